"""Config is data: pydantic models, YAML presets in ``configs/``, ``--set a.b=c`` overrides,
and a stable hash of the effective config (secrets excluded) that names runs and caches."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import BackendNotFound, ConfigError
from .resources import configs_dir

Dtype = Literal["auto", "bfloat16", "float16", "float32"]
Quant = Literal["none", "int8", "nf4", "fp8"]
_QUANT_HELP = "none | int8 | nf4 (bitsandbytes) | fp8 (torchao); CUDA only"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMConfig(_Strict):
    backend: str = Field("auto", description="auto | openai | embedded | transformers (or a plugin)")
    model: str | None = Field(None, description="openai: model name; transformers: HF id or path; "
                                                "embedded: a GGUF path (default: bundled SmolLM2-135M)")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    seed: int | None = 0
    max_tokens: int = Field(1024, ge=16, le=32768)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10, description="retries on 429/5xx/timeouts/connection errors")
    backoff_s: float = Field(1.0, ge=0.0, description="first retry delay; doubles each retry")
    n_ctx: int = Field(8192, ge=512, description="context length (embedded backend)")
    device: str = "auto"
    dtype: Dtype = "auto"
    quantization: Quant = Field("none", description=_QUANT_HELP)
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific extras")


class GeneratorConfig(_Strict):
    backend: str = "cogvideox"
    model: str = Field("THUDM/CogVideoX-5b", description="HF id, local path, or 'tiny' (random weights)")
    num_frames: int = Field(49, ge=1)
    steps: int = Field(50, ge=1)
    guidance: float = Field(6.0, ge=0.0)
    fps: int = Field(8, ge=1, le=120)
    height: int = Field(480, ge=8)
    width: int = Field(720, ge=8)
    dynamic_cfg: bool = True
    scheduler: Literal["dpm", "ddim", "pipeline"] = "dpm"
    dtype: Dtype = "auto"
    device: str = "auto"
    offload: Literal["auto", "none", "model", "sequential"] = "auto"
    vae_tiling: bool = True
    max_prompt_tokens: int | None = Field(None, ge=8, description="default: the pipeline's own limit")
    options: dict[str, Any] = Field(default_factory=dict)


class CaptionerConfig(_Strict):
    backend: str = "vlm"
    model: str = Field("Qwen/Qwen2.5-VL-7B-Instruct", description="HF id, local path, or 'tiny'")
    num_frames: int = Field(8, ge=1, le=64)
    max_new_tokens: int = Field(256, ge=1)
    frame_size: int = Field(448, ge=16, description="longest side of each sampled frame, pixels")
    dtype: Dtype = "auto"
    device: str = "auto"
    quantization: Quant = Field("none", description=_QUANT_HELP)
    options: dict[str, Any] = Field(default_factory=dict)


class ScorerConfig(_Strict):
    backend: str = "videocon"
    model: str | None = Field(None, description="default: videocon videophysics/videocon_physics, videophy2 "
                                                "videophysics/videophy_2_auto, vlm-judge the captioner's model")
    num_frames: int | None = Field(None, ge=1, le=64, description="default: the backend's own "
                                   "(vlm-judge 8; videocon and videophy2 32, as the reference)")
    frame_size: int = Field(448, ge=16)
    dtype: Dtype = "auto"
    device: str = "auto"
    quantization: Quant = Field("none", description=_QUANT_HELP + "; not the published metric when set")
    batch_size: int = Field(1, ge=1)
    reference_truncation: bool = Field(False, description="videocon: cut at 257 tokens like the reference")
    options: dict[str, Any] = Field(default_factory=dict)


class LoopConfig(_Strict):
    max_rounds: int = Field(4, ge=1, le=50)
    min_rounds: int = Field(1, ge=1, description="no early stop (threshold, patience, empty mismatch) before this")
    threshold: float = Field(0.9, ge=0.0, le=1.0, description="stop when the score reaches this")
    patience: int = Field(2, ge=1, description="stop after this many rounds without an epsilon gain")
    epsilon: float = Field(0.01, ge=0.0)
    sa_weight: float = Field(0.5, ge=0.0)
    pc_weight: float = Field(0.5, ge=0.0)
    seed: int = Field(42, description="video seed, fixed across rounds of one prompt")
    parse_retries: int = Field(2, ge=0, le=5, description="re-asks that show the LLM its parse error")
    history_in_refine: bool = True
    allow_long_prompt: bool = Field(False, description="accept a user prompt over the generator's token "
                                                       "budget (it is cut by the text encoder) with a warning")

    @model_validator(mode="after")
    def _weights(self) -> "LoopConfig":
        if self.sa_weight + self.pc_weight <= 0:
            raise ValueError("sa_weight + pc_weight must be > 0")
        if self.min_rounds > self.max_rounds:
            raise ValueError(f"min_rounds ({self.min_rounds}) must not exceed max_rounds ({self.max_rounds})")
        return self


class Config(_Strict):
    preset: str | None = Field(None, description="name of the preset this config came from")
    llm: LLMConfig = Field(default_factory=LLMConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    captioner: CaptionerConfig = Field(default_factory=CaptionerConfig)
    scorer: ScorerConfig = Field(default_factory=ScorerConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    out: str = "runs"
    note: str | None = Field(None, description="free text shown by `phyt2v presets`")

    def effective(self) -> dict[str, Any]:
        """The config as plain data. Holds no secret: keys live only in the environment."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Stable short hash of everything that changes results (not ``out``, ``note``, ``preset``)."""
        data = self.effective()
        for k in ("out", "note", "preset"):
            data.pop(k, None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def check_options(section: str, backend: str, options: dict[str, Any], known: tuple[str, ...] = ()) -> dict[str, Any]:
    """A backend's ``<section>.options`` with unknown keys refused by name."""
    extra = sorted(set(options) - set(known))
    if extra:
        raise ConfigError(f"unknown {section}.options {extra} for the '{backend}' backend; "
                          f"known: {', '.join(known) or 'none (remove ' + section + '.options)'}")
    return dict(options)


# ---------------------------------------------------------------- presets and loading

def preset_names() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


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


def _format_validation(err: ValidationError, source: str) -> str:
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
        data = _read_yaml(preset_path(preset))
        data.setdefault("preset", preset)
        source = f"preset {preset}"
    elif file:
        data = _read_yaml(Path(file))
        source = str(file)
    data = apply_overrides(data, overrides)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None


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
