"""Which LLM ``llm.backend: auto`` resolves to, as a pure function of the config, CUDA and the environment.

Used by ``AutoLLM`` (to build it), by the memory plan and ``phyt2v doctor`` (to show it), and at the
start of every run (to say it). Order: an API endpoint when one is configured (``llm.base_url``; else a served
captioner's endpoint and model when no LLM is configured; else an API key in the environment); else on a CUDA
machine the captioner's own VLM answering text-only chat (one shared copy); else the embedded SmolLM2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..config import Config

WEAK = "the embedded SmolLM2-135M (a smoke-test model: weak physics reasoning)"


def choose_llm(config: "Config", *, cuda: bool, env: Mapping[str, str]) -> tuple[str, str | None, str]:
    """(backend, model, reason) for the ``llm`` role. ``model`` None means the backend's default."""
    c = config.llm
    if c.backend != "auto":
        model = (c.model or config.captioner.model) if c.backend == "vlm" else c.model
        return c.backend, model, f"asked for: llm.backend={c.backend}"
    if c.base_url:
        return "openai", c.model, f"llm.base_url is set ({c.base_url})"
    served = captioner_llm(config)
    if served is not None:
        where = served["base_url"] or "the openai SDK's default endpoint"
        return "openai", served["model"], (f"the served captioner's endpoint ({where}) and model answer the LLM "
                                           "steps (captioner.backend=openai; no llm.base_url or llm.model)")
    if env.get(c.api_key_env):
        return "openai", c.model, f"${c.api_key_env} is set"
    if c.model and str(c.model).endswith(".gguf"):
        return "embedded", c.model, "llm.model is a GGUF file"
    if not cuda:
        return "embedded", c.model, (f"no CUDA GPU and no ${c.api_key_env} or llm.base_url: {WEAK}; "
                                     "set an API key or llm.base_url for real reasoning")
    if c.model:
        return "transformers", c.model, f"CUDA and no ${c.api_key_env}: llm.model {c.model} through transformers"
    if config.captioner.backend == "vlm":
        return "vlm", config.captioner.model, (f"CUDA and no ${c.api_key_env} or llm.base_url: the captioner's VLM "
                                               f"{config.captioner.model} answers the LLM steps (one shared copy)")
    return "embedded", None, (f"CUDA but the captioner backend '{config.captioner.backend}' is not a VLM to share "
                              f"and no llm.model is set: {WEAK}; set llm.model to a local instruct model")


def captioner_llm(config: "Config") -> dict[str, Any] | None:
    """The ``llm`` settings ``auto`` takes from a served captioner (``captioner.backend: openai``) when no LLM is
    configured (no ``llm.base_url``, no ``llm.model``): its endpoint, model and key variable; else None."""
    c, cap = config.llm, config.captioner
    if c.backend != "auto" or c.base_url or c.model or cap.backend != "openai":
        return None
    return {"base_url": cap.base_url or None, "model": cap.model, "api_key_env": cap.api_key_env}
