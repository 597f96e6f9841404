"""The config as data: one pydantic model per section, strict (an unknown key is an error), and a stable hash of
the effective config (secrets excluded, runtime knobs excluded) that names runs and caches."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .layout import DEFAULT_GUIDANCE, LayoutGuidanceConfig

Dtype = Literal["auto", "bfloat16", "float16", "float32"]
Quant = Literal["none", "int8", "nf4", "fp8"]
_QUANT_HELP = "none | int8 | nf4 (bitsandbytes) | fp8 (torchao); CUDA only"
# A served role (captioner.backend openai, vlm-judge over an endpoint): where it runs, not what it computes (the
# model name is hashed), so these are runtime: moving the server to another port resumes the same run.
_URL_HELP = "OpenAI-compatible endpoint of the served {role}, e.g. http://127.0.0.1:8000/v1"
_KEY_HELP = "name of the environment variable holding the endpoint's key (unset: no key, for a local server)"
_TIMEOUT_HELP = "deadline of one request to the endpoint"
_RETRIES_HELP = "retries on 408/429/5xx/timeouts/connection errors"


# Fields marked ``json_schema_extra=RUNTIME`` say how a run executes, not what it computes: they are left
# out of ``Config.hash`` (so raising a retry count or turning on offload resumes the same run) and recorded
# per invocation instead. A new field opts in the same way. Compile and attention backends may change the
# last bits of a result but are runtime too: the run is the same experiment.
RUNTIME = {"runtime": True}
# ``<section>.options`` keys that are runtime (the rest of ``options`` is hashed).
RUNTIME_OPTIONS = frozenset({"vram_margin_gb"})


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
    timeout_s: float = Field(30.0, gt=0, description="deadline of one request; one call, retries and backoff "
                                                     "included, takes at most timeout_s x (max_retries + 1) "
                                                     "plus the backoff waits", json_schema_extra=RUNTIME)
    max_retries: int = Field(3, ge=0, le=10, description="retries on 429/5xx/timeouts/connection errors",
                             json_schema_extra=RUNTIME)
    backoff_s: float = Field(1.0, ge=0.0, description="first retry delay; doubles each retry",
                             json_schema_extra=RUNTIME)
    n_ctx: int = Field(8192, ge=512, description="context length (embedded backend)", json_schema_extra=RUNTIME)
    device: str = Field("auto", json_schema_extra=RUNTIME)
    dtype: Dtype = "auto"
    quantization: Quant = Field("none", description=_QUANT_HELP)
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific extras")


class CacheConfig(_Strict):
    kind: Literal["first-block", "pab", "faster", "mag", "taylorseer"] = Field(
        description="diffusers cache hook on the transformer: first-block | pab | faster | mag | taylorseer")
    params: dict[str, Any] = Field(default_factory=dict, description="arguments of the diffusers *CacheConfig, "
                                   "e.g. {threshold: 0.05} for first-block")


class GeneratorConfig(_Strict):
    """Size, frames, fps, steps and guidance left unset (None) take the family's own defaults (read from
    the pipeline's ``__call__`` signature). Options only some families have are checked when it loads."""

    backend: str = Field("cogvideox", description="diffusers (any text-to-video pipeline) | cogvideox (the "
                                                  "diffusers backend with CogVideoX paper settings) | openai (a "
                                                  "Videos API server: vLLM-Omni, SGLang, Dynamo) | veo (Veo through "
                                                  "google-genai)")
    model: str = Field("THUDM/CogVideoX-5b", description="HF id, local folder, or a tiny random-weight model: "
                                                         "tiny (CogVideoX) or tiny-<family> (wan, ltx, hunyuan, ...; "
                                                         "docs/families.md lists them); openai/veo: the served "
                                                         "model's name")
    num_frames: int | None = Field(None, ge=1, description="default: the family's")
    steps: int | None = Field(None, ge=1, description="default: the family's")
    guidance: float | None = Field(None, ge=0.0, description="default: the family's")
    fps: int | None = Field(None, ge=1, le=120, description="default: the family's")
    height: int | None = Field(None, ge=8, description="default: the family's")
    width: int | None = Field(None, ge=8, description="default: the family's")
    dynamic_cfg: bool | None = Field(None, description="CogVideoX only (default on there)")
    scheduler: Literal["dpm", "ddim", "pipeline"] | None = Field(None, description="CogVideoX only "
                                                                  "(default dpm, trailing spacing)")
    flow_shift: float | None = Field(None, gt=0.0, description="flow-matching shift (Wan, HunyuanVideo)")
    guidance_2: float | None = Field(None, ge=0.0, description="Wan 2.2 A14B: guidance of the low-noise "
                                                               "expert (guidance_scale_2)")
    true_cfg: float | None = Field(None, ge=0.0, description="HunyuanVideo: real CFG (true_cfg_scale) with "
                                                             "options.negative_prompt")
    decode_timestep: float | None = Field(None, ge=0.0, description="LTX-Video only")
    decode_noise_scale: float | None = Field(None, ge=0.0, description="LTX-Video only")
    cache: CacheConfig | None = Field(None, description="transformer cache hook (speed for a little quality)")
    attention_backend: str | None = Field(None, description="transformer.set_attention_backend, e.g. flash, "
                                                            "sage, _native_cudnn (not CogVideoX/Mochi)",
                                          json_schema_extra=RUNTIME)
    compile: bool = Field(False, description="regional torch.compile of the transformer's repeated blocks",
                          json_schema_extra=RUNTIME)
    dtype: Dtype = "auto"
    device: str = Field("auto", json_schema_extra=RUNTIME)
    offload: Literal["auto", "none", "model", "sequential", "group"] = Field("auto", json_schema_extra=RUNTIME)
    vae_tiling: bool = Field(True, json_schema_extra=RUNTIME)
    vae_slicing: bool = Field(True, json_schema_extra=RUNTIME)
    max_prompt_tokens: int | None = Field(None, ge=8, description="default: the pipeline's own limit")
    lora: list[dict[str, Any]] = Field(default_factory=list, description="LoRA adapters loaded once "
                                       "(phyt2v.generators.lora)")
    options: dict[str, Any] = Field(default_factory=dict, description="openai/veo: extra request fields, sent "
                                    "as given (docs/served.md)")
    # A served generator (openai, veo): where and how its jobs run, not what they compute (the model, size, frames
    # and seed are hashed), so these are runtime, as the served captioner's are.
    base_url: str | None = Field(None, description="openai: the Videos API base, e.g. http://127.0.0.1:8000/v1; "
                                 "veo: another Gemini endpoint (a proxy, a test server)", json_schema_extra=RUNTIME)
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key (unset: "
                                    "the backend's default, OPENAI_API_KEY for openai, GEMINI_API_KEY for veo; a "
                                    "local server needs none)", json_schema_extra=RUNTIME)
    timeout_s: float = Field(1800.0, gt=0, description="openai/veo: deadline of one whole job (create, wait, "
                             "download); past it the job is deleted where the API allows", json_schema_extra=RUNTIME)
    max_retries: int = Field(3, ge=0, le=10, description="openai/veo: retries of one request on 408/429/5xx/"
                             "timeouts/connection errors (429 waits its Retry-After)", json_schema_extra=RUNTIME)
    poll_s: float = Field(5.0, gt=0, description="openai/veo: first wait between status polls (grows 1.5x a poll, "
                          "up to 8x)", json_schema_extra=RUNTIME)
    max_in_flight: int = Field(4, ge=1, le=256, description="openai/veo: jobs running at once in this process "
                               "(seeds of a round, prompts of a pipelined batch)", json_schema_extra=RUNTIME)
    tokenizer: str | None = Field(None, description="openai/veo: a local folder or hub id (read offline) of the "
                                  "served model's tokenizer, to count prompt tokens (unset: words x "
                                  "1.3 tokens per word)")
    price_per_second: float | None = Field(None, ge=0.0, description="openai/veo: USD per second of video; each "
                                           "job records its cost (phyt2v batch --max-cost)", json_schema_extra=RUNTIME)
    layout_guidance: LayoutGuidanceConfig = Field(default_factory=LayoutGuidanceConfig)  # LVD's (config/layout.py)
    guidance_checkpointing: bool = Field(True, description="gradient checkpointing in layout guidance (less memory, "
                                         "slower)", json_schema_extra=RUNTIME)


class CaptionerConfig(_Strict):
    backend: str = Field("vlm", description="vlm (a local transformers VLM) | openai (an OpenAI-compatible vision "
                                            "chat endpoint: captioner.base_url, captioner.model)")
    model: str = Field("Qwen/Qwen2.5-VL-7B-Instruct", description="HF id, local path, or 'tiny'")
    num_frames: int = Field(8, ge=1, le=64)
    max_new_tokens: int = Field(256, ge=1)
    frame_size: int = Field(448, ge=16, description="longest side of each sampled frame, pixels")
    dtype: Dtype = "auto"
    device: str = Field("auto", json_schema_extra=RUNTIME)
    quantization: Quant = Field("none", description=_QUANT_HELP)
    options: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = Field(None, description=_URL_HELP.format(role="captioner"), json_schema_extra=RUNTIME)
    api_key_env: str = Field("OPENAI_API_KEY", description=_KEY_HELP, json_schema_extra=RUNTIME)
    timeout_s: float = Field(60.0, gt=0, description=_TIMEOUT_HELP, json_schema_extra=RUNTIME)
    max_retries: int = Field(3, ge=0, le=10, description=_RETRIES_HELP, json_schema_extra=RUNTIME)


class ScorerConfig(_Strict):
    backend: str = "videocon"
    model: str | None = Field(None, description="default: videocon videophysics/videocon_physics, videophy2 "
                                                "videophysics/videophy_2_auto, vlm-judge the captioner's model")
    num_frames: int | None = Field(None, ge=1, le=64, description="default: the backend's own "
                                   "(vlm-judge 8; videocon and videophy2 32, as the reference)")
    frame_size: int = Field(448, ge=16)
    dtype: Dtype = "auto"
    device: str = Field("auto", json_schema_extra=RUNTIME)
    quantization: Quant = Field("none", description=_QUANT_HELP + "; not the published metric when set")
    batch_size: int = Field(1, ge=1, json_schema_extra=RUNTIME)
    reference_truncation: bool = Field(False, description="videocon: cut at 257 tokens like the reference")
    options: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = Field(None, description="vlm-judge: ask this endpoint instead of the captioner's (" +
                                 _URL_HELP.format(role="scorer") + ")", json_schema_extra=RUNTIME)
    api_key_env: str = Field("OPENAI_API_KEY", description=_KEY_HELP + " (with scorer.base_url)",
                             json_schema_extra=RUNTIME)
    timeout_s: float = Field(60.0, gt=0, description=_TIMEOUT_HELP, json_schema_extra=RUNTIME)
    max_retries: int = Field(3, ge=0, le=10, description=_RETRIES_HELP, json_schema_extra=RUNTIME)
    weight: float = Field(1.0, gt=0.0, description="an ensemble member's weight in the combination")
    ensemble: list["ScorerConfig"] = Field(default_factory=list, description="the scorers of a verifier ensemble "
                                           "(given as `scorer: [{backend: ...}, ...]`; see config/ensemble.py)")

    @model_validator(mode="before")
    @classmethod
    def _ensemble_backend(cls, data: Any) -> Any:
        from .ensemble import default_backend

        return default_backend(data)

    @model_validator(mode="after")
    def _ensemble(self) -> "ScorerConfig":
        from .ensemble import check_ensemble

        check_ensemble(self)
        return self


class DraftConfig(_Strict):
    """Draft rounds: refinement rounds render cheaper, then the best prompt is rendered at full settings."""

    enabled: bool = Field(False, description="render refinement rounds as drafts (off: every round at full "
                                             "settings, as the paper)")
    steps: int | None = Field(None, ge=1, description="denoising steps of a draft (default: steps_fraction of "
                                                      "the full steps)")
    steps_fraction: float = Field(0.25, gt=0.0, le=1.0, description="draft steps as a fraction of the full "
                                                                     "steps, when steps is unset")
    height: int | None = Field(None, ge=8, description="draft height (default: the full height)")
    width: int | None = Field(None, ge=8, description="draft width (default: the full width)")
    cache: CacheConfig | None = Field(None, description="a cache hook for drafts only, e.g. {kind: first-block, "
                                                        "params: {threshold: 0.1}}")
    model: str | None = Field(None, description="openai/veo: a cheaper served model for draft rounds (the final "
                                                "render uses generator.model)")


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
    seeds: int = Field(1, ge=1, le=32, description="best-of-N: videos per round (seeds seed, seed+1, ...), all "
                                                    "scored; the best is captioned and refined")
    seed_batch: int = Field(0, ge=0, description="seeds per pipeline call (0: all at once, halved on CUDA "
                                                 "out-of-memory)", json_schema_extra=RUNTIME)
    draft: DraftConfig = Field(default_factory=DraftConfig)
    enhancer: Literal["none", "phygdpo"] = Field("none", description="phygdpo: PhyGDPO's CoT extension writes "
                                                                     "the round-1 prompt")
    min_physics: float | None = Field(None, ge=0.0, le=1.0, description="skip a prompt whose PhyGDPO "
                                      "physics-richness score is below this (0.6: its 'physical' label)")
    allow_long_prompt: bool = Field(False, description="accept a user prompt over the generator's token "
                                                       "budget (it is cut by the text encoder) with a warning")
    combine: Literal["mean", "rank"] = Field("mean", description="a scorer ensemble's best-of-N choice: mean "
                                             "(weighted mean of each scorer's score) or rank (weighted mean of "
                                             "each scorer's rank among the candidates)")
    layout: Literal["none", "plan", "guide"] = Field("none", description="plan: an LLM-planned layout (LVD), "
                                                     "checked on each video; guide: the generator also follows it")

    @model_validator(mode="after")
    def _weights(self) -> "LoopConfig":
        if self.sa_weight + self.pc_weight <= 0:
            raise ValueError("sa_weight + pc_weight must be > 0")
        if self.min_rounds > self.max_rounds:
            raise ValueError(f"min_rounds ({self.min_rounds}) must not exceed max_rounds ({self.max_rounds})")
        return self


class Config(_Strict):
    preset: str | None = Field(None, description="name of the preset this config came from",
                               json_schema_extra=RUNTIME)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    captioner: CaptionerConfig = Field(default_factory=CaptionerConfig)
    scorer: ScorerConfig = Field(default_factory=ScorerConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    out: str = Field("runs", json_schema_extra=RUNTIME)
    note: str | None = Field(None, description="free text shown by `phyt2v presets`", json_schema_extra=RUNTIME)

    @field_validator("scorer", mode="before")
    @classmethod
    def _scorer_list(cls, value: Any) -> Any:
        from .ensemble import from_list

        return from_list(value)

    def effective(self) -> dict[str, Any]:
        """The config as plain data. Holds no secret: keys live only in the environment."""
        return self.model_dump(mode="json")

    def identity(self) -> dict[str, Any]:
        """What results depend on: the effective config less every field marked runtime (``RUNTIME``)
        and every runtime ``options`` key (``RUNTIME_OPTIONS``)."""
        return _split(self, runtime=False)

    def runtime(self) -> dict[str, Any]:
        """How this invocation runs (devices, retries, offload, ...): recorded, not hashed."""
        return _split(self, runtime=True)

    def hash(self) -> str:
        """Stable short hash of ``identity()``: names runs and batch folders. Runtime knobs (retries,
        timeouts, devices, offload, batch sizes, ``out``, ...) leave it unchanged."""
        ident = self.identity()
        for (section, name), value in _PINNED.items():
            ident[section][name] = value
        for path, value in _ADDED_AT_DEFAULT.items():  # added since v2: hashed only when set
            node = ident
            for key in path[:-1]:
                node = node[key]
            if node.get(path[-1]) == value:
                del node[path[-1]]
        blob = json.dumps({"v": 2, **ident}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def legacy_hash(self) -> str | None:
        """The hash run and batch folders were named by before runtime knobs left it (the whole config but
        ``out``/``note``/``preset``), to find those folders again; None when a field added since then is
        not at its default (no old folder can match)."""
        data = self.effective()
        for k in ("out", "note", "preset"):
            data.pop(k, None)
        for section, names in _LEGACY_FIELDS.items():
            model = getattr(self, section)
            for name in list(data[section]):
                if name not in names:
                    field = type(model).model_fields[name]
                    if not _is_runtime(field) and getattr(model, name) != field.get_default(call_default_factory=True):
                        return None  # a result setting added since: no old folder can have it (runtime: any can)
                    del data[section][name]
        for (section, name), (now_default, old_default) in _LEGACY_DEFAULTS.items():
            if data[section].get(name) == now_default:  # a default changed since: the old folder has the old one
                data[section][name] = old_default
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def hash_of(saved: Any) -> str | None:
    """``Config.hash`` of a config saved by an earlier run (config.json, batch.json), None if it no longer loads."""
    try:
        return Config.model_validate(saved).hash()
    except (ValidationError, TypeError, ValueError):
        return None


# The fields that existed when ``legacy_hash`` was the hash (new fields are hashed only by ``hash``).
_LEGACY_FIELDS = {
    "llm": {"backend", "model", "base_url", "api_key_env", "temperature", "seed", "max_tokens", "timeout_s",
            "max_retries", "backoff_s", "n_ctx", "device", "dtype", "options"},
    "generator": {"backend", "model", "num_frames", "steps", "guidance", "fps", "height", "width", "dynamic_cfg",
                  "scheduler", "dtype", "device", "offload", "vae_tiling", "max_prompt_tokens", "options"},
    "captioner": {"backend", "model", "num_frames", "max_new_tokens", "frame_size", "dtype", "device", "options"},
    "scorer": {"backend", "model", "num_frames", "frame_size", "dtype", "device", "batch_size",
               "reference_truncation", "options"},
    "loop": {"max_rounds", "min_rounds", "threshold", "patience", "epsilon", "sa_weight", "pc_weight", "seed",
             "parse_retries", "history_in_refine", "allow_long_prompt"},
}


# Fields ``hash`` (v2) hashed that became runtime since (``generator.compile`` and ``attention_backend``, runtime
# settings from the start in the README): hashed at the default they had, whatever their value, so that no folder
# named since v2 with them at their defaults is renamed. Folders named with one of them on are found by their
# saved config (``hash_of``).
_PINNED = {("generator", "compile"): False, ("generator", "attention_backend"): None}


# Fields added since the v2 hash that leave it unchanged at their defaults (every folder named before them keeps
# its name); set, they are hashed. Key: the field's path in ``identity()``.
_ADDED_AT_DEFAULT = {("scorer", "weight"): 1.0, ("scorer", "ensemble"): [], ("loop", "combine"): "mean",
                     ("generator", "tokenizer"): None, ("loop", "draft", "model"): None,
                     ("generator", "layout_guidance"): DEFAULT_GUIDANCE, ("loop", "layout"): "none"}


# Defaults changed since ``legacy_hash`` was the hash: (section, field) -> (default now, default then).
_LEGACY_DEFAULTS = {("llm", "timeout_s"): (30.0, 120.0),
                    # GeneratorConfig became family-neutral (None = the family's default); the old defaults
                    # were CogVideoX's, the only family old folders can hold
                    ("generator", "dynamic_cfg"): (None, True), ("generator", "scheduler"): (None, "dpm"),
                    ("generator", "num_frames"): (None, 49), ("generator", "steps"): (None, 50),
                    ("generator", "guidance"): (None, 6.0), ("generator", "fps"): (None, 8),
                    ("generator", "height"): (None, 480), ("generator", "width"): (None, 720)}


def _is_runtime(field: Any) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("runtime"))


def _split(cfg: "Config", *, runtime: bool) -> dict[str, Any]:
    data = cfg.effective()
    out: dict[str, Any] = {}
    for name, field in type(cfg).model_fields.items():
        sub = getattr(cfg, name)
        if isinstance(sub, BaseModel):
            part = {k: v for k, v in data[name].items()
                    if _is_runtime(type(sub).model_fields[k]) == runtime and k not in ("options", "ensemble")}
            if "ensemble" in data[name] and (sub.ensemble or not runtime):  # each member split the same way
                part["ensemble"] = [_split_section(m, runtime) for m in sub.ensemble]
            opts = {k: v for k, v in (data[name].get("options") or {}).items() if (k in RUNTIME_OPTIONS) == runtime}
            if opts or (not runtime and "options" in data[name]):
                part["options"] = opts
            out[name] = part
        elif _is_runtime(field) == runtime:
            out[name] = data[name]
    return out


def _split_section(sub: BaseModel, runtime: bool) -> dict[str, Any]:
    data = sub.model_dump(mode="json")
    part = {k: v for k, v in data.items() if _is_runtime(type(sub).model_fields[k]) == runtime and k != "options"}
    opts = {k: v for k, v in (data.get("options") or {}).items() if (k in RUNTIME_OPTIONS) == runtime}
    if opts or not runtime:
        part["options"] = opts
    return part


def check_options(section: str, backend: str, options: dict[str, Any], known: tuple[str, ...] = ()) -> dict[str, Any]:
    """A backend's ``<section>.options`` with unknown keys refused by name."""
    extra = sorted(set(options) - set(known))
    if extra:
        raise ConfigError(f"unknown {section}.options {extra} for the '{backend}' backend; "
                          f"known: {', '.join(known) or 'none (remove ' + section + '.options)'}")
    return dict(options)
