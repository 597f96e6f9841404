"""Backends found by name: built-ins plus the entry-point group ``phyt2v.backends``.

An entry point is named ``<role>:<backend>`` and points at a class with a
``from_config(config)`` classmethod, e.g. ``scorer:my-judge = my_pkg.judge:MyJudge``.
Heavy imports happen only when a backend is built, so ``phyt2v --help`` stays fast.
"""

from __future__ import annotations

import difflib
import importlib
from collections import Counter
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import BackendError, BackendNotFound

if TYPE_CHECKING:
    from .config import Config

ROLES = ("llm", "generator", "captioner", "scorer")

BUILTINS: dict[str, dict[str, str]] = {
    "llm": {
        "auto": "phyt2v.llms:AutoLLM",
        "openai": "phyt2v.llms.openai_llm:OpenAILLM",
        "embedded": "phyt2v.llms.embedded:EmbeddedLLM",
        "transformers": "phyt2v.llms.transformers_llm:TransformersLLM",
        "vlm": "phyt2v.llms.vlm_llm:VLMChatLLM",
    },
    "generator": {
        "cogvideox": "phyt2v.generators.cogvideox:CogVideoXGenerator",
    },
    "captioner": {
        "vlm": "phyt2v.captioners.vlm:VLMCaptioner",
    },
    "scorer": {
        "vlm-judge": "phyt2v.scorers.vlm_judge:VLMJudgeScorer",
        "videocon": "phyt2v.scorers.videocon:VideoConScorer",
        "videophy2": "phyt2v.scorers.videophy2:VideoPhy2Scorer",
    },
}

DESCRIPTIONS: dict[str, str] = {
    "llm:auto": "openai when an endpoint or key is configured, else on CUDA the captioner's VLM, else embedded",
    "llm:vlm": "the captioner's VLM (Qwen2.5-VL / Qwen3-VL) answering text-only chat; one shared copy",
    "llm:openai": "any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)",
    "llm:embedded": "SmolLM2-135M (bundled GGUF) or any local GGUF, in-process on CPU; weak",
    "llm:transformers": "a local Hugging Face causal LM (e.g. Qwen2.5-7B-Instruct), GPU",
    "generator:cogvideox": "diffusers CogVideoXPipeline (CogVideoX-2b/5b/1.5-5B, a path, or 'tiny')",
    "captioner:vlm": "transformers image-text-to-text VLM over sampled frames (Qwen2.5-VL default)",
    "scorer:vlm-judge": "the captioner's VLM asked the VideoCon-Physics questions; P(Yes) from logits",
    "scorer:videocon": "native VideoCon-Physics (mPLUG-Owl-Video), the VideoPhy metric",
    "scorer:videophy2": "native VideoPhy-2 AutoEval (1-5 ratings)",
}

# Counts of weight loads per role in this process (a backend calls ``record_load``).
LOADS: Counter[str] = Counter()


def record_load(role: str) -> None:
    LOADS[role] += 1


def _plugins() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {r: {} for r in ROLES}
    try:
        eps = entry_points(group="phyt2v.backends")
    except Exception:  # pragma: no cover - broken metadata must not break the CLI
        return found
    for ep in eps:
        role, _, name = ep.name.partition(":")
        if role in found and name:
            found[role][name] = ep
    return found


def available(role: str) -> dict[str, Any]:
    """Backend name -> import target (str) or entry point, for one role."""
    if role not in ROLES:
        raise BackendNotFound(f"unknown role '{role}'; roles are {', '.join(ROLES)}")
    table: dict[str, Any] = dict(BUILTINS[role])
    table.update(_plugins()[role])
    return table


def check(role: str, name: str) -> Any:
    """The import target for ``name``; raises BackendNotFound (with suggestions) without importing."""
    table = available(role)
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise BackendNotFound(f"unknown {role} backend '{name}'.{hint} "
                              f"Available: {', '.join(sorted(table))} (`phyt2v backends`).")
    return table[name]


def resolve(role: str, name: str) -> type:
    target = check(role, name)
    if isinstance(target, str):
        mod, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(mod), attr)
        except ImportError as e:
            raise BackendError(f"{role} backend '{name}' cannot be imported: {e}. "
                               "Install the missing package (`phyt2v doctor` lists them).") from e
    return target.load()


_BUILT: dict[tuple[str, str], Any] = {}


def _cache_key(role: str, config: "Config") -> tuple[str, str]:
    import json

    sections = [role] + (["captioner"] if role == "scorer" else [])  # vlm-judge reads the captioner's
    data = {s: getattr(config, s).model_dump(mode="json") for s in sections}
    return role, json.dumps(data, sort_keys=True)


def build(role: str, config: "Config", *, cache: bool = True) -> Any:
    """The backend the config names for ``role``. Built (weights loaded) once per process for the
    same role settings: a second Refiner, or a batch over many prompts, reuses it."""
    key = _cache_key(role, config)
    if cache and key in _BUILT:
        return _BUILT[key]
    cls = resolve(role, getattr(config, role).backend)
    backend = cls.from_config(config)
    if cache:
        _BUILT[key] = backend
    return backend


def clear_cache() -> None:
    """Forget the built backends (their memory is freed when nothing else holds them)."""
    _BUILT.clear()
