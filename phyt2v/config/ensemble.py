"""Verifier ensembles in the config: ``scorer`` given as a list of scorer sections becomes one ``ScorerConfig`` with
``backend: ensemble`` and the list in ``ensemble``; every other reader of ``config.scorer`` keeps working.

    scorer:                                  # YAML; or --set 'scorer=[{backend: videocon}, {backend: videophy2}]'
      - {backend: videocon}
      - {backend: videophy2, weight: 0.5}
      - {backend: videoscore2}

A member's settings it leaves unset (``INHERITED``) are taken from the scorer section that holds the list (the dict
form ``scorer: {device: cpu, ensemble: [...]}``); a member's model left unset is its backend's published checkpoint,
or ``tiny`` when the captioner's model is ``tiny`` (``scorer_model``: the smoke preset's way, every model random).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

# Type names only: ``Config`` and ``ScorerConfig`` live in sections.py, which imports this module.
Config = ScorerConfig = Any

ENSEMBLE = "ensemble"
INHERITED = ("num_frames", "frame_size", "dtype", "device", "quantization", "batch_size", "base_url", "api_key_env",
             "timeout_s", "max_retries")


def from_list(value: Any) -> Any:
    """``scorer`` as written: a list of sections -> one section (one member: that member; more: an ensemble)."""
    if not isinstance(value, list):
        return value
    if not value:
        raise ValueError("the scorer list is empty; give at least one scorer, e.g. [{backend: videocon}]")
    if len(value) == 1:
        return value[0]
    return {"backend": ENSEMBLE, "ensemble": value}


def default_backend(data: Any) -> Any:
    """A section that lists scorers in ``ensemble`` is an ensemble, whatever backend a preset underneath it named
    (the dict form ``scorer: {ensemble: [...]}`` merged over a preset's ``scorer: {backend: vlm-judge}``)."""
    if isinstance(data, dict) and data.get("ensemble"):
        return {**data, "backend": ENSEMBLE}
    return data


def check_ensemble(section: ScorerConfig) -> None:
    """An ensemble names its members, each a plain scorer; a plain scorer lists none."""
    if section.backend == ENSEMBLE and len(section.ensemble) < 2:
        raise ValueError("backend 'ensemble' needs at least two scorers in 'ensemble', e.g. "
                         "scorer: [{backend: videocon}, {backend: videophy2}]")
    if section.ensemble and section.backend != ENSEMBLE:
        raise ValueError(f"'ensemble' lists scorers but backend is '{section.backend}'; leave backend out "
                         "(or set it to 'ensemble')")
    for m in section.ensemble:
        if m.backend == ENSEMBLE or m.ensemble:
            raise ValueError("an ensemble member cannot itself be an ensemble; list every scorer once")


def is_ensemble(section: ScorerConfig) -> bool:
    return section.backend == ENSEMBLE and bool(section.ensemble)


def labels(section: ScorerConfig) -> list[str]:
    """The members' names in records and tables: the backend, with -2, -3 for a backend listed again."""
    out: list[str] = []
    for m in section.ensemble:
        name, k = m.backend, 2
        while name in out:
            name, k = f"{m.backend}-{k}", k + 1
        out.append(name)
    return out


def members(section: ScorerConfig) -> list[tuple[str, ScorerConfig]]:
    """(label, member section) of an ensemble, each member's unset ``INHERITED`` settings taken from ``section``."""
    out = []
    for label, m in zip(labels(section), section.ensemble):
        update = {k: getattr(section, k) for k in INHERITED
                  if k not in m.model_fields_set and k in section.model_fields_set}
        out.append((label, m.model_copy(update=update)))
    return out


def member_config(config: Config, member: ScorerConfig) -> Config:
    """``config`` with one member as its scorer (what that member's backend is built from)."""
    return config.model_copy(update={"scorer": member})


def scorer_sections(config: Config) -> list[tuple[str, ScorerConfig]]:
    """Every scorer the config runs: the ensemble's members, or [("scorer", the one section)]."""
    s = config.scorer
    return members(s) if is_ensemble(s) else [("scorer", s)]


def scorer_model(config: Config, section: ScorerConfig, default: str) -> str:
    """The model a scorer loads: its own ``model``; unset, ``tiny`` when the captioner's model is ``tiny`` (the
    smoke preset: every model random, offline), else ``default`` (the backend's published checkpoint)."""
    if section.model:
        return section.model
    return "tiny" if config.captioner.model == "tiny" else default


def parse_scorer_list(text: str) -> list[str]:
    """``--scorer a,b,c`` -> ["a", "b", "c"] (spaces ignored); a name given twice is refused."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--scorer '{text}' names no scorer; e.g. --scorer videocon or --scorer videocon,videophy2")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--scorer names {', '.join(twice)} twice; list each scorer once")
    return names


def plan_role(label: str) -> str:
    """The role name of one scorer in the memory plan and the swap placement: ``scorer`` alone, ``scorer:<label>``
    for an ensemble's member (each placed and swapped on its own)."""
    return "scorer" if label == "scorer" else f"scorer:{label}"


def setting_key(role: str, name: str) -> str:
    """How messages name a setting of a plan role: ``scorer.quantization``, ``scorer[videocon].quantization``."""
    base, _, label = role.partition(":")
    return f"{base}[{label}].{name}" if label else f"{role}.{name}"
