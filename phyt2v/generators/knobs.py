"""Speed and memory knobs on a loaded pipeline, each checked against what the pipeline has:
transformer cache hooks, attention backend, regional compile, offload (model / sequential / group),
VAE tiling and slicing. Each returns what it turned on, for the run record."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigError, first_line

log = logging.getLogger(__name__)

CACHE_KINDS = {"first-block": "FirstBlockCacheConfig", "pab": "PyramidAttentionBroadcastConfig",
               "faster": "FasterCacheConfig", "mag": "MagCacheConfig", "taylorseer": "TaylorSeerCacheConfig"}
NEEDS_TIMESTEP = ("pab", "faster")  # these hooks ask the pipeline for the current timestep


def transformers_of(pipe: Any) -> list[Any]:
    """transformer, and transformer_2 where the pipeline has one (Wan 2.2 A14B)."""
    return [m for m in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)) if m is not None]


def cache_params(cache: Any, family: Any, steps: int | None, timestep: Any = None,
                 where: str = "generator.cache") -> dict[str, Any]:
    """The arguments of ``cache``'s diffusers config class, checked before any hook is on (at load, or before the
    weights load): each name one the class takes, each value of its annotated type (pydantic, so ``'0.1'`` or a
    list for a tuple passes and ``'x'`` for a float does not), the class's own checks, and a FasterCache
    unconditional-branch skip only where the family runs CFG as one batch. ConfigError naming ``where`` and the fix."""
    import dataclasses
    import typing

    import diffusers
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    cls = getattr(diffusers, CACHE_KINDS[cache.kind])
    params = dict(cache.params)
    fields = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(f"{where} '{cache.kind}': unknown params {unknown}; {cls.__name__} takes "
                          f"{', '.join(sorted(f for f in fields if not f.endswith('callback')))}")
    hints = typing.get_type_hints(cls)
    for name, value in params.items():
        try:
            adapter = TypeAdapter(hints[name], config=ConfigDict(arbitrary_types_allowed=True))
            params[name] = adapter.validate_python(value)
        except ValidationError as e:
            raise ConfigError(f"{where} '{cache.kind}': params.{name} {value!r} is not {_type_name(hints[name])} "
                              f"({e.errors()[0]['msg']}); fix {where}.params.{name}") from None
    if cache.kind == "faster" and not family.faster_uncond_skip and not params.get("is_guidance_distilled"):
        raise ConfigError(f"{where} 'faster': its unconditional-branch skip needs the conditional and unconditional "
                          f"passes in one transformer batch, which {family.name} pipelines do not run; set "
                          f"{where}.params.is_guidance_distilled=true (attention caching only) or use another kind "
                          "(first-block, pab, mag, taylorseer)")
    if cache.kind in NEEDS_TIMESTEP:
        params.setdefault("current_timestep_callback", timestep or (lambda: 0))
    if cache.kind == "mag" and steps:
        params.setdefault("num_inference_steps", steps)
    try:
        cls(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where} '{cache.kind}' with params {cache.params}: {first_line(e)}") from None
    return params


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def apply_cache(pipe: Any, cache: Any, family: Any, steps: int | None,
                where: str = "generator.cache") -> dict[str, Any] | None:
    """Enable ``cache`` (a CacheConfig) on every transformer of ``family``'s pipeline; errors name ``where``."""
    if cache is None:
        return None
    import diffusers
    from diffusers.models.cache_utils import CacheMixin

    params = cache_params(cache, family, steps, lambda: pipe.current_timestep, where)
    cls = getattr(diffusers, CACHE_KINDS[cache.kind])
    for tr in transformers_of(pipe):
        if not isinstance(tr, CacheMixin):
            raise ConfigError(f"{where} '{cache.kind}': the {family.name} transformer {type(tr).__name__} takes "
                              f"no cache hooks; remove {where}")
        try:
            tr.enable_cache(cls(**params))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where} '{cache.kind}' with params {cache.params}: {first_line(e)}") from None
    return {"kind": cache.kind, **{k: _plain(v) for k, v in params.items() if not callable(v)}}


def _plain(value: Any) -> Any:
    """A checked param as the run record writes it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def apply_attention_backend(pipe: Any, backend: str | None, family: str, dispatch: bool) -> str | None:
    if backend is None:
        return None
    if not dispatch:
        raise ConfigError(f"generator.attention_backend '{backend}': {family}'s attention does not go through "
                          "diffusers' attention dispatch, so it would have no effect; remove it")
    for tr in transformers_of(pipe):
        try:
            tr.set_attention_backend(backend)
        except (ValueError, ImportError, RuntimeError) as e:
            raise ConfigError(f"generator.attention_backend '{backend}': {e}".split("\n")[0]) from None
    return backend


def apply_compile(pipe: Any, on: bool, family: str) -> bool:
    if not on:
        return False
    for tr in transformers_of(pipe):
        if not getattr(tr, "_repeated_blocks", None):
            raise ConfigError(f"generator.compile: the {family} transformer {type(tr).__name__} declares no repeated "
                              "blocks for regional compile; set generator.compile=false")
        tr.compile_repeated_blocks(fullgraph=True)
    return True


def apply_vae(pipe: Any, tiling: bool, slicing: bool) -> dict[str, bool]:
    vae = getattr(pipe, "vae", None)
    done = {"tiling": False, "slicing": False}
    if vae is None:
        return done
    if tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
        done["tiling"] = True
    if slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
        done["slicing"] = True
    return done


def weight_bytes(pipe: Any) -> int:
    """Every weight of the pipeline: all torch modules (transformer_2, text_encoder_2 included)."""
    import torch

    total = 0
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in comp.parameters())
    return total


def place(pipe: Any, offload: str, device: str, margin_gb: float) -> str:
    """Move to the device, or offload to CPU ('auto': model offload when free VRAM is short)."""
    import torch

    if offload in ("model", "sequential", "group") and not device.startswith("cuda"):
        raise ConfigError(f"generator.offload '{offload}' needs a CUDA GPU (device is {device}); "
                          "set generator.offload=none or auto.")
    if not device.startswith("cuda"):
        pipe.to(device)
        return "none"
    if offload == "auto":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        need = weight_bytes(pipe) + margin_gb * 2**30
        offload = "model" if free < need else "none"
        log.info("free VRAM %.1f GiB, needed ~%.1f GiB: offload=%s", free / 2**30, need / 2**30, offload)
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
    else:
        pipe.to(device)
    return offload
