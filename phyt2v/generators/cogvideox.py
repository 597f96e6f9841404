"""CogVideoX (2b, 5b, 1.5-5B, a local folder, or 'tiny') through diffusers' CogVideoXPipeline.

Paper settings: 49 frames, 50 steps, guidance 6 with dynamic CFG, DPM scheduler with trailing
timesteps, 8 fps, 480x720, bf16 on CUDA. The pipeline is loaded once, in the constructor.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import registry
from ..config import check_options
from ..devices import resolve_device, resolve_dtype
from ..devices import resolve_model as _resolve
from ..errors import BackendError, ConfigError, InputError, first_line
from ..roles import GeneratedVideo, StepCallback

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

DEFAULT_MODEL = "THUDM/CogVideoX-5b"
OFFLOADS = ("auto", "none", "model", "sequential")
SCHEDULERS = ("dpm", "ddim", "pipeline")


def _dtype_kw() -> str:
    """Newer diffusers take ``dtype`` (``torch_dtype`` is deprecated there); older ones ``torch_dtype``."""
    from diffusers.pipelines import pipeline_utils

    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


def resolve_model(model: str) -> str:
    """'tiny' -> the tiny pipeline folder; an existing folder -> its path; else a hub id."""
    return _resolve(model, tiny_kind="cogvideox", what="generator model", example="THUDM/CogVideoX-5b",
                    marker="model_index.json")


class CogVideoXGenerator:
    """``generate(prompt, seed=, out_path=)`` -> an mp4 and its :class:`GeneratedVideo`."""

    backend = "cogvideox"

    def __init__(self, model: str = DEFAULT_MODEL, *, num_frames: int = 49, steps: int = 50,
                 guidance: float = 6.0, fps: int = 8, height: int = 480, width: int = 720,
                 dynamic_cfg: bool = True, scheduler: str = "dpm", dtype: str = "auto", device: str = "auto",
                 offload: str = "auto", vae_tiling: bool = True, max_prompt_tokens: int | None = None,
                 negative_prompt: str | None = None, vram_margin_gb: float = 6.0, pipeline: Any = None):
        if offload not in OFFLOADS:
            raise ConfigError(f"generator.offload '{offload}' is not one of {', '.join(OFFLOADS)}")
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"generator.scheduler '{scheduler}' is not one of {', '.join(SCHEDULERS)}")
        device = resolve_device(device, "generator.device")
        if offload in ("model", "sequential") and not device.startswith("cuda"):
            raise BackendError(f"generator.offload '{offload}' needs a CUDA GPU (device is {device}); "
                               "set generator.offload=none or auto.")
        self.model_id = model
        self.num_frames, self.steps, self.guidance, self.fps = num_frames, steps, guidance, fps
        self.height, self.width, self.dynamic_cfg = height, width, dynamic_cfg
        self.negative_prompt = negative_prompt
        self.device = device
        self.torch_dtype = resolve_dtype(dtype, device, "generator.dtype")

        if pipeline is None:
            pipeline = self._load(resolve_model(model))
            registry.record_load("generator")
        self.pipe = pipeline
        self._set_scheduler(scheduler)
        self.offload = self._place(offload, vram_margin_gb)
        if vae_tiling:
            self.pipe.vae.enable_tiling()
            self.pipe.vae.enable_slicing()
        self.model_limit = int(getattr(self.pipe.transformer.config, "max_text_seq_length", None) or 226)
        if max_prompt_tokens is not None and max_prompt_tokens > self.model_limit:
            raise ConfigError(f"generator.max_prompt_tokens {max_prompt_tokens} is over the model's limit of "
                              f"{self.model_limit} tokens; use a value <= {self.model_limit}.")
        self.max_prompt_tokens = max_prompt_tokens or self.model_limit
        self._check_size(height, width, num_frames)

    @classmethod
    def from_config(cls, config: "Config") -> "CogVideoXGenerator":
        g = config.generator
        opts = check_options("generator", "cogvideox", g.options, ("negative_prompt", "vram_margin_gb"))
        return cls(g.model, num_frames=g.num_frames, steps=g.steps, guidance=g.guidance, fps=g.fps,
                   height=g.height, width=g.width, dynamic_cfg=g.dynamic_cfg, scheduler=g.scheduler,
                   dtype=g.dtype, device=g.device, offload=g.offload, vae_tiling=g.vae_tiling,
                   max_prompt_tokens=g.max_prompt_tokens, **opts)

    # ------------------------------------------------------------------ loading

    def _load(self, path: str) -> Any:
        from diffusers import CogVideoXPipeline

        try:
            return CogVideoXPipeline.from_pretrained(path, **{_dtype_kw(): self.torch_dtype})
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load CogVideoX pipeline '{path}': {first_line(e)}. Check the id/path, or "
                               "download it first (`huggingface-cli download <id>`).") from e

    def _set_scheduler(self, name: str) -> None:
        if name == "pipeline":
            return
        from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

        cls = CogVideoXDPMScheduler if name == "dpm" else CogVideoXDDIMScheduler
        self.pipe.scheduler = cls.from_config(self.pipe.scheduler.config, timestep_spacing="trailing")

    def _place(self, offload: str, margin_gb: float) -> str:
        """Move to the device, or offload to CPU when free VRAM is short ('auto'). Returns the mode used."""
        import torch

        if not self.device.startswith("cuda"):
            self.pipe.to(self.device)
            return "none"
        if offload == "auto":
            free, _ = torch.cuda.mem_get_info(torch.device(self.device))
            need = self.weight_bytes() + margin_gb * 2**30
            offload = "model" if free < need else "none"
            log.info("free VRAM %.1f GiB, needed ~%.1f GiB: offload=%s", free / 2**30, need / 2**30, offload)
        if offload == "model":
            self.pipe.enable_model_cpu_offload(device=self.device)
        elif offload == "sequential":
            self.pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            self.pipe.to(self.device)
        return offload

    def weight_bytes(self) -> int:
        total = 0
        for name in ("transformer", "text_encoder", "vae"):
            mod = getattr(self.pipe, name, None)
            if mod is not None:
                total += sum(p.numel() * p.element_size() for p in mod.parameters())
        return total

    # ------------------------------------------------------------------ checks

    def _check_size(self, height: int, width: int, num_frames: int) -> None:
        p = self.pipe
        spatial = 2 ** (len(p.vae.config.block_out_channels) - 1) * p.transformer.config.patch_size
        # The VAE decodes latent frames in batches of 2 after the first: only an odd latent count
        # gives back the frames asked for, hence 8k+1 frames for CogVideoX (49, 81, 161).
        temporal = int(p.vae.config.temporal_compression_ratio) * int(getattr(p.vae, "num_latent_frames_batch_size", 2))
        # CogVideoX1.5 also patches latents in time (patch_size_t=2): 16k+1 frames (81 by default)
        temporal *= int(getattr(p.transformer.config, "patch_size_t", None) or 1)
        for key, val in (("height", height), ("width", width)):
            if val % spatial:
                raise ConfigError(f"generator.{key} {val} must be a multiple of {spatial} for {self.model_id} "
                                  f"(VAE x patch size), e.g. {max(spatial, val // spatial * spatial)}.")
        if num_frames < 1 or (num_frames - 1) % temporal:
            near = max(1, (num_frames - 1) // temporal * temporal + 1)
            raise ConfigError(f"generator.num_frames {num_frames} must be {temporal}k+1 for {self.model_id} "
                              f"(e.g. {near} or 49).")

    # ------------------------------------------------------------------ calls

    def count_tokens(self, prompt: str) -> int:
        """Tokens the text encoder sees, end-of-sequence token included (the pipeline's tokenizer)."""
        return len(self.pipe.tokenizer(prompt, add_special_tokens=True, truncation=False).input_ids)

    def generate(self, prompt: str, *, seed: int, out_path: Path,
                 on_step: StepCallback | None = None) -> GeneratedVideo:
        import torch

        from ..video_io import write_video

        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("generator: empty prompt; pass the text to turn into a video")
        tokens = self.count_tokens(prompt)
        # The pipeline always encodes exactly model_limit tokens (CogVideoX-2b's positional table needs
        # it), so a prompt is cut only past that; a smaller max_prompt_tokens is a budget for the LLM.
        truncated = tokens > self.model_limit
        if tokens > self.max_prompt_tokens:
            log.info("prompt has %d tokens, over the budget of %d%s", tokens, self.max_prompt_tokens,
                        ": the text encoder cuts the rest" if truncated else "")
        total = self.steps

        def _cb(pipe: Any, i: int, t: Any, kw: dict) -> dict:
            if on_step is not None:
                on_step(i + 1, total)
            return kw

        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.pipe.set_progress_bar_config(disable=on_step is not None)  # the caller shows progress
        out = self.pipe(prompt=prompt, negative_prompt=self.negative_prompt, height=self.height,
                        width=self.width, num_frames=self.num_frames, num_inference_steps=self.steps,
                        guidance_scale=self.guidance, use_dynamic_cfg=self.dynamic_cfg, generator=generator,
                        output_type="np", max_sequence_length=self.model_limit, callback_on_step_end=_cb)
        frames = out.frames[0]
        path = write_video(list(frames), Path(out_path), fps=self.fps)
        h, w = frames[0].shape[:2]
        return GeneratedVideo(path=path, num_frames=len(frames), fps=self.fps, width=w, height=h,
                              seed=int(seed), prompt_tokens=tokens, truncated=truncated)
