"""Per-call overrides of a loaded diffusers generator (draft rounds): fewer steps, another size, another cache
hook or none, for one call only. ``plan`` checks them before anything touches the pipeline;
``cache_for_call`` swaps the transformer cache hook for the call and puts the configured one back after.

    overrides = {"steps": 8, "height": 240, "width": 416, "cache": {"kind": "first-block", "params": {...}}}

Every key is optional; ``cache: None`` means no cache hook for this call even if the config set one.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..config import CacheConfig
from ..errors import ConfigError, InputError, first_line
from . import knobs
from .families import Settings
from .shapes import check_sides

KEYS = ("steps", "height", "width", "cache")


@dataclass
class CallPlan:
    """What one call renders with: its settings, and the cache hook it swaps in (``swap_cache`` False: the
    configured hook, untouched)."""

    settings: Settings
    swap_cache: bool = False
    cache: CacheConfig | None = None


def _int(overrides: dict[str, Any], key: str, low: int) -> int | None:
    val = overrides.get(key)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int) or val < low:
        raise InputError(f"overrides['{key}'] {val!r} must be an integer >= {low}")
    return val


def _cache(value: Any) -> CacheConfig | None:
    if value is None or isinstance(value, CacheConfig):
        return value
    if not isinstance(value, dict):
        raise InputError(f"overrides['cache'] {value!r} must be a dict like {{'kind': 'first-block', 'params': "
                         "{'threshold': 0.1}}, or None for no cache hook")
    try:
        return CacheConfig.model_validate(value)
    except Exception as e:  # pydantic names the bad field
        raise InputError(f"overrides['cache'] {value!r}: {first_line(e)}") from None


def plan(gen: Any, overrides: dict[str, Any] | None) -> CallPlan:
    """The call's settings with ``overrides`` applied, each value checked (InputError naming it)."""
    if overrides is None:
        return CallPlan(gen.settings)
    if not isinstance(overrides, dict):
        raise InputError(f"overrides {overrides!r} must be a dict with keys among {', '.join(KEYS)}")
    unknown = sorted(set(overrides) - set(KEYS), key=str)
    if unknown:
        raise InputError(f"unknown overrides key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    steps, height, width = _int(overrides, "steps", 1), _int(overrides, "height", 8), _int(overrides, "width", 8)
    if gen.family.classes:
        check_sides({"height": height, "width": width}, gen.family, gen.rules[1], gen.model_id,
                    prefix="overrides: ", error=InputError)
    s = gen.settings
    settings = dataclasses.replace(s, steps=steps or s.steps, height=height or s.height, width=width or s.width)
    if "cache" in overrides:
        return CallPlan(settings, swap_cache=True, cache=_cache(overrides["cache"]))
    configured = gen.cfg.cache
    if (steps and steps != s.steps and configured is not None and configured.kind == "mag"
            and "num_inference_steps" not in configured.params):
        # MagCache is set up for a number of steps: re-apply the configured hook for this call's steps
        return CallPlan(settings, swap_cache=True, cache=configured)
    return CallPlan(settings)


def _remove(pipe: Any) -> None:
    for tr in knobs.transformers_of(pipe):
        if getattr(tr, "is_cache_enabled", False):
            tr.disable_cache()


@contextmanager
def cache_for_call(gen: Any, call: CallPlan) -> Iterator[dict[str, Any] | None]:
    """The cache hook of this call (yields its record, None when off); the configured hook is back after."""
    if not call.swap_cache:
        yield gen.knobs.get("cache")
        return
    _remove(gen.pipe)
    try:
        try:
            applied = knobs.apply_cache(gen.pipe, call.cache, gen.family, call.settings.steps,
                                        where="overrides['cache']")
        except ConfigError as e:
            raise InputError(str(e)) from None
        yield applied
    finally:
        _remove(gen.pipe)
        knobs.apply_cache(gen.pipe, gen.cfg.cache, gen.family, gen.cfg.steps or gen.defaults.get("steps"))
