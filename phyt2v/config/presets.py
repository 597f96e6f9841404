"""Building the effective config: defaults < a preset (YAML in ``configs/``, ``extends:`` chains) or a file <
``--set a.b=c`` overrides < keyword sections. Errors name the key, the value and the fix."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import BackendNotFound, ConfigError
from ..resources import configs_dir
from .sections import Config


def preset_names(*, bases: bool = False) -> list[str]:
    """Preset names; base presets (``_name.yaml``, only for ``extends:``) are hidden unless ``bases``."""
    return sorted(p.stem for p in configs_dir().glob("*.yaml") if bases or not p.stem.startswith("_"))


def preset_path(name: str) -> Path:
    path = configs_dir() / f"{name}.yaml"
    if not path.is_file():
        names = preset_names()
        near = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise BackendNotFound(f"unknown preset '{name}'.{hint} Available: {', '.join(names)} "
                              "(`phyt2v presets` lists them).")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}. Pass an existing YAML file to --config.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}. Check the path and permissions.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping (key: value), not {type(data).__name__}.")
    return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_extends(data: dict[str, Any], source: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """``extends: <preset>`` -> that preset's data deep-merged under ``data`` (chains allowed, cycles refused).
    The base's ``note`` is not inherited."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{source}: 'extends' must name a preset, e.g. extends: _base-cuda")
    if base_name in _seen:
        raise ConfigError(f"{source}: 'extends' loops: {' -> '.join(_seen + (base_name,))}")
    base = resolve_extends(_read_yaml(preset_path(base_name)), f"preset {base_name}", _seen + (base_name,))
    base.pop("note", None)
    base.pop("preset", None)
    return _deep_merge(base, data)


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides (values parsed as YAML: numbers, booleans, lists)."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' must look like key=value, e.g. --set loop.max_rounds=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"--set '{item}': empty key. Use dotted keys such as generator.steps=30")
        node = data
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set '{item}': '{p}' is a value, not a section")
            node = nxt
        node[parts[-1]] = _parse_value(raw)
    return data


def format_validation(err: ValidationError, source: str) -> str:
    msgs = []
    for e in err.errors():
        key = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            msgs.append(f"unknown key '{key}'")
        else:
            val = e.get("input")
            shown = f" (got {val!r})" if not isinstance(val, dict) else ""
            msgs.append(f"'{key}': {e['msg']}{shown}")
    return f"invalid config ({source}): " + "; ".join(msgs)


def load_config(preset: str | None = None, *, file: str | Path | None = None,
                overrides: list[str] | None = None, **top: Any) -> Config:
    """Build the effective config: defaults < preset or file < ``overrides`` (``a.b=c``) < ``top``.

    ``top`` takes section dicts or values, e.g. ``load_config("smoke", loop={"max_rounds": 2})``.
    """
    if preset and file:
        raise ConfigError("pass either a preset or a config file, not both")
    data: dict[str, Any] = {}
    source = "defaults"
    if preset:
        source = f"preset {preset}"
        data = resolve_extends(_read_yaml(preset_path(preset)), source, (preset,))
        data.setdefault("preset", preset)
    elif file:
        source = str(file)
        data = resolve_extends(_read_yaml(Path(file)), source)
    data = apply_overrides(data, overrides)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    # An endpoint given in this call (--set llm.base_url=URL, or llm={"base_url": ...}) selects the
    # openai backend, even over a preset's `backend: embedded`, unless this call also names a backend.
    named = {k.split("=", 1)[0].strip() for k in overrides or []}
    top_llm = top.get("llm") if isinstance(top.get("llm"), dict) else {}
    llm = data.get("llm")
    if (isinstance(llm, dict) and llm.get("base_url") and ("llm.base_url" in named or "base_url" in top_llm)
            and "llm.backend" not in named and "backend" not in top_llm):
        llm["backend"] = "openai"
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation(e, source)) from None


def config_keys() -> list[str]:
    """Every dotted key a user can set (for docs and error hints)."""
    out = []
    for section, field in Config.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += [f"{section}.{k}" for k in ann.model_fields]
        else:
            out.append(section)
    return out
