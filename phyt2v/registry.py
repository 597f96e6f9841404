"""Backends found by name: built-ins plus the entry-point group ``phyt2v.backends``.

An entry point is named ``<role>:<backend>`` and points at a class with a
``from_config(config)`` classmethod, e.g. ``scorer:my-judge = my_pkg.judge:MyJudge``.
Heavy imports happen only when a backend is built, so ``phyt2v --help`` stays fast.
"""

from __future__ import annotations

import difflib
import logging
import importlib
import threading
from collections import Counter
from importlib.metadata import entry_points
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .errors import BackendError, BackendNotFound, Phyt2vError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger("phyt2v")

ROLES = ("llm", "generator", "captioner", "scorer")

# The built-in backends, in the form of the plugins' entry points ("<role>:<name>" = "module:attr"): both are read
# into the same table by ``available`` and imported by the same ``resolve``.
BUILTINS: dict[str, str] = {
    "llm:auto": "phyt2v.llms:AutoLLM",
    "llm:openai": "phyt2v.llms.openai_llm:OpenAILLM",
    "llm:embedded": "phyt2v.llms.embedded:EmbeddedLLM",
    "llm:transformers": "phyt2v.llms.transformers_llm:TransformersLLM",
    "llm:vlm": "phyt2v.llms.vlm_llm:VLMChatLLM",
    "generator:diffusers": "phyt2v.generators.diffusers_gen:DiffusersGenerator",
    "generator:cogvideox": "phyt2v.generators.cogvideox:CogVideoXGenerator",
    "generator:openai": "phyt2v.generators.openai_video:OpenAIVideoGenerator",
    "generator:veo": "phyt2v.generators.veo:VeoGenerator",
    "captioner:vlm": "phyt2v.captioners.vlm:VLMCaptioner",
    "captioner:openai": "phyt2v.captioners.openai_vlm:OpenAIVLMCaptioner",
    "scorer:vlm-judge": "phyt2v.scorers.vlm_judge:VLMJudgeScorer",
    "scorer:videocon": "phyt2v.scorers.videocon:VideoConScorer",
    "scorer:videophy2": "phyt2v.scorers.videophy2:VideoPhy2Scorer",
    "scorer:videoscore2": "phyt2v.scorers.videoscore2:VideoScore2Scorer",
    "scorer:ensemble": "phyt2v.scorers.ensemble:EnsembleScorer",
}
GROUP = "phyt2v.backends"


@dataclass(frozen=True)
class Entry:
    """One backend: ``target`` is "module:attr"; ``source`` is "built-in" or "plugin (<distribution>)"."""

    role: str
    name: str
    target: str
    source: str = "built-in"


DESCRIPTIONS: dict[str, str] = {
    "llm:auto": "openai when an endpoint or key is configured, else on CUDA the captioner's VLM, else embedded",
    "llm:vlm": "the captioner's VLM (Qwen2.5-VL / Qwen3-VL) answering text-only chat; one shared copy",
    "llm:openai": "any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)",
    "llm:embedded": "SmolLM2-135M (bundled GGUF) or any local GGUF, in-process on CPU; weak",
    "llm:transformers": "a local Hugging Face causal LM (e.g. Qwen2.5-7B-Instruct), GPU",
    "generator:diffusers": "any diffusers text-to-video pipeline: Wan 2.1/2.2, LTX-Video, HunyuanVideo (1.5), "
                           "CogVideoX, Mochi (hub id, folder, or tiny-wan/-ltx/-hunyuan)",
    "generator:cogvideox": "the diffusers backend held to CogVideoX with the paper's settings (or 'tiny')",
    "generator:openai": "a Videos API server (vLLM-Omni, SGLang Diffusion, Dynamo): jobs created, polled, downloaded",
    "generator:veo": "Veo 3.x through google-genai (pip install 'phyt2v[veo]'); key in GEMINI_API_KEY",
    "captioner:vlm": "transformers image-text-to-text VLM over sampled frames (Qwen2.5-VL default)",
    "captioner:openai": "an OpenAI-compatible vision chat endpoint (vLLM, SGLang, a provider) shown the frames",
    "scorer:vlm-judge": "the captioner's VLM asked the VideoCon-Physics questions; P(Yes) from logits (from an "
                        "endpoint's logprobs when the captioner is served)",
    "scorer:videocon": "native VideoCon-Physics (mPLUG-Owl-Video), the VideoPhy metric",
    "scorer:videophy2": "native VideoPhy-2 AutoEval (1-5 ratings)",
    "scorer:videoscore2": "native VideoScore2 (Qwen2.5-VL-7B): alignment, physics, visual quality 1-5 and a rationale",
    "scorer:ensemble": "several scorers on each video (scorer given as a list), combined by loop.combine",
}

# Counts of weight loads per role in this process (a backend calls ``record_load``).
LOADS: Counter[str] = Counter()


def record_load(role: str) -> None:
    LOADS[role] += 1


_WARNED: set[str] = set()


def _entries() -> list[Entry]:
    """Every backend: the built-ins, then the plugins of the entry-point group ``phyt2v.backends``. A plugin named
    like a built-in is not used (the built-in stays), with a warning naming both; never a silent replacement."""
    out = [Entry(*key.split(":", 1), target) for key, target in BUILTINS.items()]
    taken = {(e.role, e.name): e for e in out}
    try:
        eps = list(entry_points(group=GROUP))
    except Exception:  # pragma: no cover - broken metadata must not break the CLI
        return out
    for ep in eps:
        role, _, name = ep.name.partition(":")
        if role not in ROLES or not name:
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
        entry = Entry(role, name, ep.value, f"plugin ({dist})")
        held = taken.get((role, name))
        if held is not None:
            if held.target != entry.target and ep.name not in _WARNED:
                _WARNED.add(ep.name)
                log.warning("the plugin backend '%s' of %s (%s) has the name of the %s backend (%s); the %s one is "
                            "used: give the plugin's entry point another name", ep.name, dist, ep.value,
                            held.source, held.target, held.source)
            continue
        taken[(role, name)] = entry
        out.append(entry)
    return out


def available(role: str) -> dict[str, Entry]:
    """Backend name -> its :class:`Entry`, for one role (built-ins and plugins)."""
    if role not in ROLES:
        raise BackendNotFound(f"unknown role '{role}'; roles are {', '.join(ROLES)}")
    return {e.name: e for e in _entries() if e.role == role}


def check(role: str, name: str) -> Entry:
    """The entry for ``name``; raises BackendNotFound (with suggestions) without importing."""
    table = available(role)
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise BackendNotFound(f"unknown {role} backend '{name}'.{hint} "
                              f"Available: {', '.join(sorted(table))} (`phyt2v backends`).")
    return table[name]


def resolve(role: str, name: str) -> type:
    """The backend class (imported now: the heavy imports of a backend happen when it is constructed)."""
    entry = check(role, name)
    mod, _, attr = entry.target.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise BackendError(f"{role} backend '{name}' ({entry.source}: {entry.target}) cannot be imported: {e}. "
                           "Install the missing package (`phyt2v doctor` lists them).") from e


def check_before_load(role: str, config: "Config") -> None:
    """The backend class's own ``check_before_load(config)``, when it declares one (the generators: options, shapes,
    cache hooks and draft settings against the model's family): a ConfigError before any weight loads or downloads."""
    hook = getattr(resolve(role, getattr(config, role).backend), "check_before_load", None)
    if hook is not None:
        hook(config)


def is_remote(role: str, config: "Config") -> bool:
    """The role's backend class declares ``remote = True``: it runs on a server (a served generator), so it holds
    no local weights and its steps take no GPU worker."""
    try:
        cls = resolve(role, getattr(config, role).backend)
    except Phyt2vError:
        return False
    return bool(getattr(cls, "remote", False))


_BUILT: dict[tuple[str, str], Any] = {}

# One model load at a time in this process: diffusers' and transformers' ``from_pretrained`` change process-wide
# state while they build a model (the default dtype, ``nn.Module.register_parameter`` for meta-device init, the
# init functions), so two loads in two threads corrupt each other ("Cannot copy out of meta tensor", weights
# reported MISSING and left random). Re-entrant: a backend may build another (the LLM's shared VLM).
LOAD_LOCK = threading.RLock()
_CLEARERS: list[Callable[[], None]] = []


def _cache_key(role: str, config: "Config", cls: type) -> tuple[str, str]:
    """The role's own section, plus the fields of other sections the backend declares it reads
    (``reads_config = {"captioner": ("model", ...)}``): a change elsewhere does not rebuild it."""
    import json

    data = {role: getattr(config, role).model_dump(mode="json")}
    for section, fields in (getattr(cls, "reads_config", None) or {}).items():
        dump = getattr(config, section).model_dump(mode="json")
        data[section] = {f: dump[f] for f in fields}
    return role, json.dumps(data, sort_keys=True)


# role -> (load key, backend) for backends that split load-time from call-time settings (``load_settings``)
_LOADED: dict[str, tuple[str, Any]] = {}


def _free(role: str) -> None:
    """Drop a replaced backend (and every built object sharing its weights); free its memory."""
    import gc
    import sys

    _LOADED.pop(role, None)
    for key in [k for k in _BUILT if k[0] == role]:
        del _BUILT[key]
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def build(role: str, config: "Config", *, cache: bool = True) -> Any:
    """The backend the config names for ``role``. Built (weights loaded) once per process for the
    same role settings: a second Refiner, or a batch over many prompts, reuses it. A backend class with
    ``load_settings(config)`` and ``reconfigure(config)`` (the generators) loads once per load-time
    settings: other settings (steps, size, frames, guidance) reuse the loaded weights; a load with other
    load-time settings replaces (and frees) the one held. Builds are serialised process-wide (``LOAD_LOCK``);
    a thread that waited gets the backend the other thread just built."""
    cls = resolve(role, getattr(config, role).backend)
    with LOAD_LOCK:
        return _build(role, config, cls, cache)


def _build(role: str, config: "Config", cls: type, cache: bool) -> Any:
    import json

    key = _cache_key(role, config, cls)
    if cache and key in _BUILT:
        return _BUILT[key]
    split = getattr(cls, "load_settings", None)
    if cache and split is not None:
        lkey = json.dumps([getattr(config, role).backend, split(config)], sort_keys=True, default=str)
        held = _LOADED.get(role)
        if held is not None and held[0] == lkey:
            backend = held[1].reconfigure(config)
        else:
            if held is not None:
                _free(role)
            backend = cls.from_config(config)
            _LOADED[role] = (lkey, backend)
    else:
        backend = cls.from_config(config)
    if cache:
        _BUILT[key] = backend
    return backend


def on_clear_cache(clear: Callable[[], None]) -> Callable[[], None]:
    """Register a model cache of its own (e.g. the shared VLM's) for ``clear_cache`` to empty too."""
    if clear not in _CLEARERS:
        _CLEARERS.append(clear)
    return clear


def clear_cache() -> None:
    """Forget the built backends and every registered model cache (their memory is freed when
    nothing else holds them)."""
    _BUILT.clear()
    for clear in _CLEARERS:
        clear()
    _LOADED.clear()
