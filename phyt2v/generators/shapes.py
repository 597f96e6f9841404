"""The checks a generator setting passes before any weight loads and again before each call: family-only options,
frames t*k+1 and sides multiples of s, each error naming the key and the nearest valid values."""

from __future__ import annotations

from typing import Any

from ..config import GeneratorConfig
from ..errors import ConfigError
from .families import CALL_OPTIONS, FAMILY_OPTIONS_KEYS, Family


def check_family_options(cfg: GeneratorConfig, family: Family) -> None:
    for key in FAMILY_OPTIONS_KEYS:
        if getattr(cfg, key) is not None and key not in family.options:
            takes = ", ".join(sorted(family.options)) or "none of them"
            raise ConfigError(f"generator.{key} does not apply to {family.name} pipelines (this family takes "
                              f"{takes}); remove generator.{key}")
    for key, val in cfg.options.items():
        if key not in CALL_OPTIONS:
            continue
        kind = family.call_options.get(key)
        if kind is None:
            takes = ", ".join(sorted(family.call_options)) or "none of them"
            raise ConfigError(f"generator.options.{key} does not apply to {family.name} pipelines (this family takes "
                              f"{takes}); remove generator.options.{key}")
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(val, kinds) or (isinstance(val, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"generator.options.{key} must be {names}, not {val!r}")


def check_sides(sides: dict[str, int | None], family: Family, spatial: int, model: str, *,
                prefix: str = "generator.", error: type[Exception] = ConfigError) -> None:
    """Sides multiples of ``spatial``, named (``prefix`` + key) with the nearest valid values."""
    for key, val in sides.items():
        if val and val % spatial:
            lo = max(spatial, val // spatial * spatial)
            raise error(f"{prefix}{key} {val} must be a multiple of {spatial} for {model} ({family.name}: "
                        f"VAE x patch size), e.g. {lo} or {lo + spatial}.")


def check_shape(cfg: GeneratorConfig, family: Family, rules: tuple[int, int], defaults: dict[str, Any],
                model: str) -> None:
    """Frames t*k+1 and sides multiples of s, named with the nearest valid values."""
    temporal, spatial = rules
    check_sides({k: getattr(cfg, k) or defaults.get(k) for k in ("height", "width")}, family, spatial, model)
    n = cfg.num_frames or defaults.get("num_frames")
    if n and (n - 1) % temporal:
        lo = max(1, (n - 1) // temporal * temporal + 1)
        raise ConfigError(f"generator.num_frames {n} must be {temporal}k+1 for {model} ({family.name}), "
                          f"e.g. {lo} or {lo + temporal}.")
    family.check(n, cfg.options)
