"""LLM backends: ``openai`` (any OpenAI-compatible endpoint), ``embedded`` (a GGUF in-process,
SmolLM2-135M by default), ``transformers`` (a local HF causal LM), ``vlm`` (the captioner's VLM
answering text-only chat, sharing its loaded copy) and ``auto``.

Nothing heavy is imported here; each backend imports its library when it is constructed.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phyt2v")


class AutoLLM:
    """Picks a backend with :func:`choice.choose_llm` (an endpoint when configured, else on CUDA the
    captioner's VLM shared as the LLM, else embedded). ``from_config`` returns that backend itself."""

    backend = "auto"
    # the captioner's settings it may take (``captioner_llm``) or share (``vlm``): part of the registry's cache key
    reads_config = {"captioner": ("backend", "model", "base_url", "api_key_env")}

    @staticmethod
    def choose(config: "Config") -> str:
        """The backend name ``auto`` resolves to on this machine, without building anything."""
        return AutoLLM.choice(config)[0]

    @staticmethod
    def choice(config: "Config") -> tuple[str, str | None, str]:
        import torch

        from ..runtime.llm_choice import choose_llm

        return choose_llm(config, cuda=torch.cuda.is_available(), env=os.environ)

    @classmethod
    def from_config(cls, config: "Config") -> Any:
        from .. import registry

        from ..runtime.llm_choice import captioner_llm

        backend, model, reason = cls.choice(config)
        log.info("LLM: %s%s (%s)", backend, f" {model}" if model else "", reason)
        served = captioner_llm(config)
        if backend == "openai" and served is not None:  # the served captioner's endpoint and model
            config = config.model_copy(update={"llm": config.llm.model_copy(update=served)})
        if backend != "auto" and model != config.llm.model and backend in ("transformers", "vlm"):
            config = config.model_copy(update={"llm": config.llm.model_copy(update={"model": model})})
        return registry.resolve("llm", backend).from_config(config)


__all__ = ["AutoLLM"]
