"""LLM backends: ``openai`` (any OpenAI-compatible endpoint), ``embedded`` (a GGUF in-process,
SmolLM2-135M by default), ``transformers`` (a local HF causal LM) and ``auto``.

Nothing heavy is imported here; each backend imports its library when it is constructed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config


class AutoLLM:
    """Picks a backend: ``openai`` when ``llm.base_url`` is set or the key variable named by
    ``llm.api_key_env`` is set, else ``embedded``. ``from_config`` returns that backend itself."""

    backend = "auto"

    @staticmethod
    def choose(config: "Config") -> str:
        """The backend name ``auto`` resolves to, without building anything."""
        c = config.llm
        return "openai" if (c.base_url or os.environ.get(c.api_key_env)) else "embedded"

    @classmethod
    def from_config(cls, config: "Config") -> Any:
        if cls.choose(config) == "openai":
            from .openai_llm import OpenAILLM

            return OpenAILLM.from_config(config)
        from .embedded import EmbeddedLLM

        return EmbeddedLLM.from_config(config)


__all__ = ["AutoLLM"]
