"""Any diffusers text-to-video pipeline (``generator.backend: diffusers``), loaded once.

What every family shares lives here: resolving the model, the family check before weights load
(model_index.json), loading through ``DiffusionPipeline.from_pretrained``, dtype, LoRA hook, scheduler,
speed knobs, placement, the token budget, the call, the mp4 and its :class:`GeneratedVideo`.
What a family changes lives in ``families/<family>.py``.
"""

from __future__ import annotations

import copy
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import registry
from ..config import GeneratorConfig, check_options
from ..errors import BackendError, ConfigError, InputError, LoadError, first_line
from ..roles import GeneratedVideo, StepCallback
from ..runtime.devices import dtype_kwargs, resolve_device, resolve_dtype
from . import chunks, footprint, guide_call, knobs, precheck
from . import overrides as overrides_mod
from .families import CALL_OPTIONS, Settings, binding, for_class, signature_defaults
from .model_index import fetch_index, index_before_load, resolve_model
from .shapes import check_family_options, check_shape

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

CALL_TIME = ("num_frames", "steps", "guidance", "guidance_2", "true_cfg", "fps", "height", "width", "dynamic_cfg",
             "decode_timestep", "decode_noise_scale", "max_prompt_tokens", "layout_guidance", "guidance_checkpointing")
OPTIONS = ("negative_prompt", "vram_margin_gb", "revision", *CALL_OPTIONS)  # revision: the hub branch to load


class DiffusersGenerator:
    """``generate(prompt, seed=, out_path=)`` -> an mp4 and its :class:`GeneratedVideo`."""

    backend = "diffusers"
    default_tiny = "cogvideox"
    supports_many = True  # generate_many renders several seeds per pipeline call
    takes_layout = True  # generate(..., layout=) guides Wan and CogVideoX with it (guidance.py)

    def __init__(self, model: str = "THUDM/CogVideoX-5b", *, pipeline: Any = None,
                 negative_prompt: str | None = None, vram_margin_gb: float = 6.0, revision: str | None = None,
                 **settings: Any):
        call_options = {k: settings.pop(k) for k in list(settings) if k in CALL_OPTIONS}
        self.revision = revision
        try:
            cfg = GeneratorConfig(backend=self.backend, model=model, options=call_options, **settings)
        except Exception as e:  # pydantic names the key
            raise ConfigError(f"generator settings: {first_line(e)}") from None
        self.cfg, self.model_id, self.negative_prompt = cfg, model, negative_prompt
        self.device = resolve_device(cfg.device, "generator.device")
        if cfg.offload in ("model", "sequential", "group") and not self.device.startswith("cuda"):
            raise ConfigError(f"generator.offload '{cfg.offload}' needs a CUDA GPU (device is {self.device}); "
                              "set generator.offload=none or auto.")
        self.torch_dtype = resolve_dtype(cfg.dtype, self.device, "generator.dtype")
        if pipeline is None:
            path = resolve_model(model, self.default_tiny)
            self._precheck(path)
            pipeline = self._load(path)
            registry.record_load("generator")
        self.pipe = pipeline
        self.family = for_class(type(pipeline).__name__)
        self.sig = signature_defaults(type(pipeline))
        if self.family.classes == () and not {"prompt", "num_frames"} <= set(self.sig):
            raise ConfigError(f"{type(pipeline).__name__} is not a text-to-video pipeline (its __call__ takes no "
                              "prompt/num_frames); pass a text-to-video model")
        if not self.family.classes:
            log.warning("%s is not a known video family: running on its own defaults, no frame/size rules",
                        type(pipeline).__name__)
        self.rules = self.family.rules(getattr(getattr(pipeline, "vae", None), "config", None),
                                       getattr(getattr(pipeline, "transformer", None), "config", None))
        self.defaults = self.family.defaults(self.sig, getattr(getattr(pipeline, "transformer", None), "config", None))
        check_family_options(cfg, self.family)
        self.loras = self._apply_loras(cfg.lora) if cfg.lora else []
        self.knobs: dict[str, Any] = dict(self.family.prepare(self.pipe, cfg))
        self.knobs["cache"] = knobs.apply_cache(self.pipe, cfg.cache, self.family,
                                                cfg.steps or self.defaults.get("steps"))
        self.knobs["attention_backend"] = knobs.apply_attention_backend(self.pipe, cfg.attention_backend,
                                                                        self.family.name, self.family.attention_dispatch)
        self.knobs["vae"] = knobs.apply_vae(self.pipe, cfg.vae_tiling, cfg.vae_slicing)
        self.offload = self.knobs["offload"] = knobs.place(self.pipe, cfg.offload, self.device, vram_margin_gb)
        self.knobs["compile"] = knobs.apply_compile(self.pipe, cfg.compile, self.family.name)
        self.encoders = self.family.encoders(self.pipe, self.sig)
        self._configure(cfg, negative_prompt)

    # ------------------------------------------------------------------ config
    @classmethod
    def from_config(cls, config: "Config") -> "DiffusersGenerator":
        g = config.generator
        opts = check_options("generator", cls.backend, g.options, OPTIONS)
        fields = g.model_dump(exclude={"backend", "model", "options"})
        gen = cls(g.model, **fields, **opts)
        precheck.check_loaded(gen, config)
        return gen

    only_family: str | None = None  # the one family a backend serves (cogvideox), checked before loading

    @classmethod
    def check_before_load(cls, config: "Config") -> None:
        """Refuse, before any weight loads or downloads, what loading would refuse (precheck.py)."""
        check_options("generator", cls.backend, config.generator.options, OPTIONS)
        precheck.check_before_load(config, cls.only_family)

    @classmethod
    def render_shape(cls, config: "Config") -> dict[str, int] | None:
        """What the memory plan's working-memory estimate reads, before loading (footprint.py)."""
        return footprint.render_shape(config.generator)

    @classmethod
    def budget_before_load(cls, config: "Config") -> int:
        """The token budget before the weights load (``phyt2v enhance`` never loads them): see budget.py."""
        from .budget import budget_before_load

        return budget_before_load(config.generator)

    @classmethod
    def load_settings(cls, config: "Config") -> dict[str, Any]:
        """The settings that decide the loaded weights; the others are passed per call (no reload)."""
        data = config.generator.model_dump(mode="json", exclude=set(CALL_TIME))
        data["options"] = {k: v for k, v in data["options"].items() if k not in ("negative_prompt", *CALL_OPTIONS)}
        return data

    def reconfigure(self, config: "Config") -> "DiffusersGenerator":
        """A generator on the same loaded pipeline with other call-time settings."""
        g = config.generator
        opts = check_options("generator", self.backend, g.options, OPTIONS)
        other = copy.copy(self)
        other._configure(g, opts.get("negative_prompt"))
        precheck.check_loaded(other, config)
        return other

    def _configure(self, cfg: GeneratorConfig, negative_prompt: str | None) -> None:
        check_family_options(cfg, self.family)
        d = self.defaults
        self.settings = Settings(num_frames=cfg.num_frames or d["num_frames"], steps=cfg.steps or d["steps"],
                                 guidance=cfg.guidance if cfg.guidance is not None else d["guidance"],
                                 fps=cfg.fps or d["fps"] or 16, height=cfg.height or d["height"],
                                 width=cfg.width or d["width"], negative_prompt=negative_prompt,
                                 guidance_2=cfg.guidance_2, true_cfg=cfg.true_cfg, dynamic_cfg=cfg.dynamic_cfg,
                                 decode_timestep=cfg.decode_timestep, decode_noise_scale=cfg.decode_noise_scale,
                                 options={k: v for k, v in cfg.options.items() if k in CALL_OPTIONS})
        s = self.settings
        self.num_frames, self.steps, self.guidance, self.fps = s.num_frames, s.steps, s.guidance, s.fps
        self.height, self.width, self.negative_prompt = s.height, s.width, negative_prompt
        self.dynamic_cfg = True if cfg.dynamic_cfg is None else cfg.dynamic_cfg
        if self.family.classes:
            check_shape(cfg, self.family, self.rules, d, self.model_id)
        self.model_limit = min((e.limit for e in binding(self.encoders)), default=None)
        if cfg.max_prompt_tokens is not None and self.model_limit and cfg.max_prompt_tokens > self.model_limit:
            raise ConfigError(f"generator.max_prompt_tokens {cfg.max_prompt_tokens} is over the model's limit of "
                              f"{self.model_limit} tokens; use a value <= {self.model_limit}.")
        self.max_prompt_tokens = cfg.max_prompt_tokens or self.model_limit or 0
        self.family.call_kwargs(self.pipe, s, self.sig)  # a family-specific setting it cannot pass fails now

    # ------------------------------------------------------------------ loading
    def _precheck(self, path: str) -> None:
        """Refuse options, shapes and cache params the family cannot take before any weight loads (the model's
        model_index.json and configs, the published table, or those files fetched from the hub first)."""
        index = index_before_load(path) or fetch_index(path)
        if index is None or not index.class_name:
            return
        family = for_class(index.class_name)
        if not family.classes:
            return
        check_family_options(self.cfg, family)
        missing = family.missing(index)
        if missing:
            raise LoadError(f"cannot load {self.model_id}: {missing}")
        import diffusers

        cls = getattr(diffusers, index.class_name, None)
        defaults = family.defaults(signature_defaults(cls), index.transformer) if cls is not None else {}
        check_shape(self.cfg, family, family.rules(index.vae, index.transformer), defaults, self.model_id)
        if self.cfg.cache is not None:
            knobs.cache_params(self.cfg.cache, family, self.cfg.steps or defaults.get("steps"))

    pipeline_class, label = "DiffusionPipeline", "diffusers"  # what _load calls, and its name in errors

    def _load(self, path: str) -> Any:
        import diffusers

        try:
            revision = {"revision": self.revision} if self.revision else {}
            return getattr(diffusers, self.pipeline_class).from_pretrained(
                path, **dtype_kwargs(self.torch_dtype), **revision)
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load {self.label} pipeline '{path}': {first_line(e)}. Check the id/path, or "
                               "download it first (`huggingface-cli download <id>`).") from e

    def _apply_loras(self, specs: list[Any]) -> list[Any]:
        from .lora import apply_loras

        return apply_loras(self.pipe, specs)

    def weight_bytes(self) -> int:
        return knobs.weight_bytes(self.pipe)

    # ------------------------------------------------------------------ calls
    def count_tokens(self, prompt: str) -> int:
        """Tokens of the binding text encoder (the sequence encoder with the smallest limit), as the pipeline
        encodes."""
        encs = binding(self.encoders)
        if not encs:
            return len(prompt.split())
        return min(encs, key=lambda e: e.limit).count(self.family.text(prompt, self.settings))

    def tokens_per_word(self) -> float:
        """Tokens per English word of the binding encoder, measured on a reference sentence (fixed
        template/special tokens cancel out), for the LLM's word budget."""
        ref = "A heavy glass bottle slides off the wooden table, falls, and shatters on the stone floor."
        return min(3.0, max(1.0, (self.count_tokens(ref) - self.count_tokens("")) / len(ref.split())))

    def token_counts(self, prompt: str) -> dict[str, int]:
        text = self.family.text(prompt, self.settings)
        return {e.name: e.count(text) for e in self.encoders}

    def describe(self) -> dict[str, Any]:
        """What this generator is and which knobs are on: stored in the run record."""
        out = {"family": self.family.name, "pipeline": type(self.pipe).__name__, "token_budget": self.model_limit,
               "encoders": {e.name: e.limit for e in self.encoders}, "steps": self.steps,
               "guidance": self.guidance, "knobs": self._active_knobs()}
        pooled = [e.name for e in self.encoders if e.pooled_only]
        if pooled:
            out["pooled_only"] = pooled  # limits recorded, not binding the budget
        return out

    def _active_knobs(self) -> dict[str, Any]:
        active = {k: v for k, v in self.knobs.items() if v not in (None, False)}
        if self.loras:
            active["loras"] = [dict(x) for x in self.loras]  # JSON objects in run.json (lora.load_one's record)
        return active

    def generate(self, prompt: str, *, seed: int, out_path: Path, on_step: StepCallback | None = None,
                 overrides: dict[str, Any] | None = None, layout: Any = None) -> GeneratedVideo:
        """One video. ``overrides`` (draft rounds): ``steps``, ``height``, ``width``, ``cache`` for this call
        only (see overrides.py); None renders with the configured settings. ``layout`` (a ``schemas.Layout``):
        LVD's layout guidance (guidance.py)."""
        return self.generate_many(prompt, seeds=[seed], out_paths=[out_path], on_step=on_step,
                                  overrides=overrides, layout=layout)[0]

    def generate_many(self, prompt: str, *, seeds: list[int], out_paths: list[Path],
                      on_step: StepCallback | None = None, overrides: dict[str, Any] | None = None,
                      batch_size: int = 0, layout: Any = None) -> list[GeneratedVideo]:
        """One video per seed, ``batch_size`` seeds per pipeline call (0: all in one call, a torch.Generator
        per seed); a call that runs out of CUDA memory is retried in halves. ``on_step(i, total)`` runs once
        per step of each call. ``layout``: guide each call with it (None: unguided, as without it)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("generator: empty prompt; pass the text to turn into a video")
        seeds, paths = chunks.check_seeds(seeds, out_paths, batch_size)
        call = overrides_mod.plan(self, overrides)
        counts = self.token_counts(prompt)
        tokens = self.count_tokens(prompt)
        truncated = any(counts[e.name] > e.limit for e in self.encoders)
        if tokens > self.max_prompt_tokens:
            log.info("prompt has %d tokens, over the budget of %d%s", tokens, self.max_prompt_tokens,
                     ": the text encoder cuts the rest" if truncated else "")
        kw = self.family.call_kwargs(self.pipe, call.settings, self.sig)
        # Every supported family's prepare_latents (diffusers 0.42) takes a list of generators, one per video of the
        # batch; the batch is num_videos_per_prompt copies of the prompt, or the prompt repeated where __call__ ignores
        # or mishandles num_videos_per_prompt (CogVideoX, Kandinsky 5, HunyuanVideo 1.5: Family.videos_per_prompt).
        # A generic pipeline without num_videos_per_prompt gets one call per seed.
        size = batch_size if "num_videos_per_prompt" in self.sig else 1
        with overrides_mod.cache_for_call(self, call) as cache:
            used = {**self._active_knobs(), "cache": cache}
            used = {k: v for k, v in used.items() if v not in (None, False)}

            text = self.family.text(prompt, call.settings)
            guide = None if layout is None else guide_call.prepare(self, layout, text, call.settings.num_frames, cache)

            def render(idx: list[int]) -> list[GeneratedVideo]:
                videos = self._call(text, [seeds[i] for i in idx], kw, call.settings.steps, on_step, guide)
                knobs_used = {**used, "layout_guidance": guide.record()} if guide is not None else used
                return [self._write(frames, paths[i], seeds[i], tokens, truncated, counts, call.settings.steps,
                                    knobs_used, audio) for (frames, audio), i in zip(videos, idx)]

            return chunks.in_chunks(len(seeds), size, render)

    def _call(self, prompt: str, seeds: list[int], kw: dict[str, Any], total: int,
              on_step: StepCallback | None, guide: Any = None) -> list[tuple[Any, Any]]:
        """One pipeline call for ``seeds``: their frames (one array per video) and audio track (or None) each."""
        import torch

        kw = dict(kw)
        if self.family.step_callback and "callback_on_step_end" in self.sig:
            def _cb(pipe: Any, i: int, t: Any, cb_kw: dict) -> dict:
                if on_step is not None:
                    on_step(i + 1, total)
                return cb_kw
            kw["callback_on_step_end"] = _cb
        elif on_step is not None:
            on_step(0, 0)  # no step callback: an indeterminate 'generating' state
        for tr in knobs.transformers_of(self.pipe):
            if getattr(tr, "is_cache_enabled", False):
                tr._reset_stateful_cache()
        gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        text: str | list[str] = prompt
        if len(seeds) > 1 and self.family.videos_per_prompt:
            kw["num_videos_per_prompt"] = len(seeds)
        elif len(seeds) > 1:
            text = [prompt] * len(seeds)
        self.pipe.set_progress_bar_config(disable=on_step is not None)  # the caller shows progress
        with guide.running(kw) if guide is not None else nullcontext():
            out = self.pipe(prompt=text, generator=gens if len(gens) > 1 else gens[0], output_type="np", **kw)
        tracks = self.family.tracks(self.pipe, out, len(seeds)) if self.settings.options.get("audio", True) else None
        return list(zip(out.frames[:len(seeds)], tracks or [None] * len(seeds)))

    def _write(self, frames: Any, out_path: Path, seed: int, tokens: int, truncated: bool,
               counts: dict[str, int], steps: int, used: dict[str, Any], audio: Any = None) -> GeneratedVideo:
        from ..store.video_io import write_video

        path = write_video(list(frames), Path(out_path), fps=self.fps)
        track = None
        if audio is not None:  # (samples x channels, rate): muxed into the mp4 as AAC
            from .audio import mux_audio

            track = mux_audio(path, *audio, seconds=len(frames) / self.fps)
        h, w = frames[0].shape[:2]
        return GeneratedVideo(path=path, num_frames=len(frames), fps=self.fps, width=w, height=h,
                              seed=int(seed), prompt_tokens=tokens, truncated=truncated,
                              family=self.family.name, steps=steps, guidance=self.guidance,
                              token_counts=counts, knobs=dict(used), audio=track)

