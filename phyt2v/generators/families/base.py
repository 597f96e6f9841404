"""What every diffusers text-to-video family shares, and the defaults a family file overrides.

A family states only what differs: which pipeline classes it serves, its frame and size rule (read from
the VAE and transformer configs), facts the pipeline does not expose (fps), how guidance and extra
call arguments are passed, scheduler choices, and how the text encoder(s) count a prompt.
Defaults (size, frames, steps, guidance, token limit) come from the pipeline's own ``__call__`` signature.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# Options that only some families take; a family lists the ones it accepts in ``options``.
FAMILY_OPTIONS = ("dynamic_cfg", "scheduler", "flow_shift", "guidance_2", "true_cfg", "decode_timestep",
                  "decode_noise_scale")


@dataclass
class Encoder:
    """One text encoder as the pipeline feeds it: ``count(prompt)`` tokens of which ``limit`` are kept.

    ``pooled_only``: the encoder feeds only a pooled vector (HunyuanVideo's CLIP-L, Kandinsky 5's CLIP), not the
    token sequence the transformer reads: its limit is recorded, and a cut is reported as truncation, but it is
    not the prompt budget (the sequence encoders' smallest limit is)."""

    name: str
    count: Callable[[str], int]
    limit: int
    pooled_only: bool = False


def binding(encoders: list[Encoder]) -> list[Encoder]:
    """The encoders whose limits bind the prompt budget: every sequence encoder (not the pooled-only ones)."""
    return [e for e in encoders if not e.pooled_only]


@dataclass
class Settings:
    """Call-time knobs (changing them never reloads weights). None: the family's default."""

    num_frames: int
    steps: int
    guidance: float | None
    fps: int
    height: int
    width: int
    negative_prompt: str | None = None
    guidance_2: float | None = None
    true_cfg: float | None = None
    dynamic_cfg: bool | None = None
    decode_timestep: float | None = None
    decode_noise_scale: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the family's call options (``Family.call_options``)


def signature_defaults(pipeline_cls: type) -> dict[str, Any]:
    """The ``__call__`` keyword defaults of a pipeline class (None where it has none)."""
    params = inspect.signature(pipeline_cls.__call__).parameters
    return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in params.items()
            if k != "self"}


def config_value(cfg: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    val = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if val is None else val


def _patch(value: Any, axis: int = -1) -> int:
    """A transformer patch size as an int (Wan gives (t, h, w))."""
    if isinstance(value, (list, tuple)):
        return int(value[axis])
    return int(value or 1)


class Family:
    name = "generic"
    classes: tuple[str, ...] = ()
    fps: int | None = None              # a fact the pipeline does not expose
    options: frozenset[str] = frozenset()
    attention_dispatch = True           # does set_attention_backend reach its attention?
    step_callback = True                # does __call__ take callback_on_step_end?
    videos_per_prompt = True            # does __call__ honour num_videos_per_prompt (else: a prompt list)?
    faster_uncond_skip = True           # can FasterCache skip the unconditional half of CFG? (it needs both passes in
                                        # one transformer batch of BCFHW latents, as CogVideoX and Mochi run them)
    tiny: str | None = None             # the tiny model kind (tiny.py) of this family
    frames_arg = "num_frames"           # the __call__ argument the frame count goes to (Sana-Video: frames)
    # ``generator.options`` keys this family passes to its __call__ (name: type), e.g. SkyReels-V2 DF's ar_step
    call_options: Mapping[str, type | tuple[type, ...]] = {}
    audio = False                       # __call__ returns an audio track with the frames (LTX-2)

    # -------------------------------------------------- facts read from configs (before or after loading)
    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        """(temporal multiple, spatial multiple): frames must be t*k+1, sides multiples of s.
        The generic rule: 4k+1 frames (most video VAEs), sides multiple of 8 x patch size."""
        t = int(config_value(vae, "temporal_compression_ratio", config_value(vae, "scale_factor_temporal", 4)))
        s = int(config_value(vae, "spatial_compression_ratio", config_value(vae, "scale_factor_spatial", 8)))
        return t * _patch(config_value(transformer, "patch_size_t", 1)), s * _patch(config_value(transformer, "patch_size", 1))

    def token_grid(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        """(frames per latent token, pixels per token side) for the memory plan's token count; by default the frame
        and size rule's factors (VAE x patch)."""
        return self.rules(vae, transformer)

    def hidden_size(self, transformer: Mapping[str, Any] | None) -> int | None:
        """The transformer's hidden size: heads x head dim (every family here), None when the config lacks them."""
        heads, dim = config_value(transformer, "num_attention_heads"), config_value(transformer, "attention_head_dim")
        return int(heads) * int(dim) if heads and dim else None

    def defaults(self, sig: dict[str, Any], transformer: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Family defaults for height, width, num_frames, steps, guidance, fps (from the signature)."""
        return {"height": sig.get("height"), "width": sig.get("width"), "num_frames": sig.get(self.frames_arg),
                "steps": sig.get("num_inference_steps"), "guidance": sig.get("guidance_scale"),
                "fps": sig.get("frame_rate") or self.fps}

    def static_limit(self, sig: dict[str, Any], index: Any) -> int | None:
        """The budget before loading, from the signature and the folder's configs (None: unknown)."""
        return sig.get("max_sequence_length")

    # -------------------------------------------------- after loading
    def token_limit(self, pipe: Any, sig: dict[str, Any]) -> int | None:
        return sig.get("max_sequence_length") or getattr(pipe, "tokenizer_max_length", None)

    def clean(self, prompt: str) -> str:
        """The text the pipeline actually tokenizes (Wan cleans it first)."""
        return prompt

    def text(self, prompt: str, s: Settings) -> str:
        """The prompt as phyt2v passes it to the pipeline (Sana-Video appends its motion score): counted and sent."""
        return prompt

    def tracks(self, pipe: Any, out: Any, n: int) -> list[tuple[Any, int]] | None:
        """The audio of the ``n`` videos of a call's output, one (samples x channels float array, sample rate) each,
        or None when the family makes no audio."""
        return None

    def check(self, num_frames: int | None, options: Mapping[str, Any]) -> None:
        """ConfigError for a frame count and call options the pipeline cannot render together (checked before any
        weight loads, with the family's default frames when unset)."""

    def missing(self, index: Any) -> str | None:
        """A package the pipeline needs and this install lacks, named with its install line (None: none), checked
        before any weight loads (``index``: what the model's files or the published table say)."""
        return None

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        """The text encoder(s) as the pipeline encodes: by default one tokenizer, special tokens added."""
        tok = getattr(pipe, "tokenizer", None)
        limit = self.token_limit(pipe, sig)
        if tok is None or not limit:
            return []
        return [Encoder("text_encoder", lambda p: len(tok(self.clean(p), add_special_tokens=True,
                                                           truncation=False).input_ids), int(limit))]

    def prepare(self, pipe: Any, cfg: Any) -> dict[str, Any]:
        """Scheduler changes at load time (flow shift, CogVideoX DPM). Returns what it set, for the record."""
        if cfg.flow_shift is not None:
            return {"flow_shift": set_flow_shift(pipe, cfg.flow_shift, self.name)}
        return {}

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        """Arguments of ``pipe(...)`` beyond prompt/seed/output: only the ones the signature takes and the user or
        the family sets (a None is never passed: it would replace the pipeline's own default, e.g. Allegro's
        negative prompt)."""
        kw: dict[str, Any] = {"height": s.height, "width": s.width, self.frames_arg: s.num_frames,
                              "num_inference_steps": s.steps, "negative_prompt": s.negative_prompt,
                              "guidance_scale": s.guidance}
        if "frame_rate" in sig:
            kw["frame_rate"] = s.fps
        kw.update({k: v for k, v in s.options.items() if k in self.call_options})
        return {k: v for k, v in kw.items() if k in sig and v is not None}


def set_flow_shift(pipe: Any, shift: float, family: str) -> float:
    """Flow shift on the scheduler config (UniPC/DPM: ``flow_shift``; FlowMatchEuler: ``shift``), by the key the
    scheduler's ``__init__`` takes."""
    from ...errors import ConfigError

    sched = pipe.scheduler
    conf = dict(sched.config)
    # the key the scheduler class reads (a config may carry both: Motif-Video's FlowMatchEuler config stores an unread
    # flow_shift beside its shift)
    takes = inspect.signature(type(sched).__init__).parameters
    key = "flow_shift" if "flow_shift" in takes else "shift" if "shift" in takes else None
    if key is None or conf.get("use_dynamic_shifting"):
        raise ConfigError(f"generator.flow_shift: the {family} scheduler {type(sched).__name__} has no fixed flow "
                          "shift; remove generator.flow_shift")
    pipe.scheduler = type(sched).from_config(conf, **{key: float(shift)})
    return float(shift)
