"""How long a batch will take, said before it starts (``phyt2v reproduce``): an estimate, never a measurement.

Full-size models: GPU-hours of denoising on one H100, from the render's token count and the transformer's
parameter count (the memory plan's sources: ``render_shape`` of the generator backend, ``paramcount``):

    tokens T = latent frames x (H / px) x (W / px)                      (as ``memplan`` counts them)
    FLOPs per forward = 2 P T (the linear layers) + T^2 P / (3 hidden)  (attention: 4 T^2 hidden per layer,
                                                                         layers ~ P / (12 hidden^2))
    x 2 with classifier-free guidance (guidance > 1; HunyuanVideo: true_cfg > 1, its guidance is embedded)
    seconds = FLOPs / (50% of an H100's 989 TFLOP/s dense bf16)

Checked against the one published timing at hand: the CogVideoX-5B model card gives ~200 s for 50 steps on one
A100 (bf16, CPU offload and VAE tiling on); this formula at 50% of the A100's 312 TFLOP/s gives ~245 s. Not
counted: VAE decode, captioning, scoring, the LLM, model loading and offloading (all add to it).

Tiny random models (the smoke preset): CPU minutes, from about 20 s per prompt and round measured on two CPU
cores (embedded SmolLM2, tiny CogVideoX and Qwen2-VL, 2026-12-07), plus about a minute of loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import Phyt2vError
from . import paramcount

if TYPE_CHECKING:
    from ..config import Config

H100_BF16_FLOPS = 989e12          # dense bf16 peak of one H100 SXM
UTILISATION = 0.5                 # the share of it a video DiT sustains (assumed; see the check above)
SMOKE_S_PER_ROUND = 20.0          # tiny models on two CPU cores, per prompt and round (measured)
SMOKE_LOAD_S = 60.0               # loading the embedded LLM and the tiny models, once per command
DEFAULT_STEPS = 50                # when neither the config nor the published table gives the step count
BASIS_GPU = ("denoising only, on one H100 at 50% of its 989 TFLOP/s bf16 (FLOPs from the transformer's "
             "parameters and the render's tokens; VAE decode, captioning, scoring, the LLM and offloading not "
             "counted); an upper bound on rounds (the loop may stop early)")
BASIS_SMOKE = ("smoke preset: tiny random-weight models on the CPU, no GPU: about 20 s per prompt and round "
               "(measured on 2 CPU cores) plus about a minute of loading")


@dataclass
class Estimate:
    prompts: int                   # prompts left to run
    videos: int                    # renders: prompts x rounds x seeds (+ final renders with loop.draft)
    seconds: float | None          # None: no estimate (unknown model size)
    unit: str                      # "GPU-hours" | "CPU minutes"
    basis: str
    seconds_per_video: float | None = None

    @property
    def value(self) -> float | None:
        if self.seconds is None:
            return None
        return self.seconds / (3600 if self.unit == "GPU-hours" else 60)

    def line(self) -> str:
        if self.prompts == 0:
            return "nothing left to run: every selected prompt is finished (no GPU time)"
        what = f"{self.prompts} prompt(s), up to {self.videos} video(s)"
        if self.value is None:
            return f"{what}: no time estimate ({self.basis})"
        per = f", ~{self.seconds_per_video:.0f} s per video" if self.seconds_per_video else ""
        return f"{what}: estimated {self.value:.1f} {self.unit}{per} ({self.basis})"

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": self.prompts, "videos": self.videos, "unit": self.unit, "value": self.value,
                "seconds": self.seconds, "seconds_per_video": self.seconds_per_video, "basis": self.basis}


def _videos(config: "Config", prompts: int) -> int:
    loop = config.loop
    return prompts * (loop.max_rounds * loop.seeds + (1 if loop.draft.enabled else 0))


def _transformer_params(model: str) -> int | None:
    try:
        parts = paramcount.pipeline_params(model)
    except (ValueError, TypeError, KeyError, ImportError, OSError):
        parts = None
    parts = parts or paramcount.published(model) or {}
    experts = [v for k, v in parts.items() if k.startswith("transformer")]
    return max(experts) if experts else None   # two experts (Wan 2.2 A14B): one of them runs each step


def _render_shape(config: "Config") -> dict[str, int] | None:
    try:
        hook = getattr(registry.resolve("generator", config.generator.backend), "render_shape", None)
        return hook(config) if hook is not None else None
    except Phyt2vError:
        return None


def _cfg_factor(config: "Config") -> int:
    g = config.generator
    pipeline = (paramcount.published_configs(g.model) or {}).get("pipeline")
    if pipeline == "HunyuanVideoPipeline":
        return 2 if (g.true_cfg or 1.0) > 1.0 else 1
    return 2 if (g.guidance or 0.0) > 1.0 else 1


def seconds_per_video(config: "Config") -> float | None:
    """Denoising seconds of one full-settings video on one H100 (see the module doc), None when unknown."""
    shape, params = _render_shape(config), _transformer_params(config.generator.model)
    if not shape or not params:
        return None
    px = shape["pixels_per_token"]
    tokens = ((shape["num_frames"] - 1) // shape["frames_per_token"] + 1) * (shape["height"] // px) * \
        (shape["width"] // px)
    per_forward = params * tokens * (2 + tokens / (3 * shape["hidden"]))
    steps = config.generator.steps or DEFAULT_STEPS
    return _cfg_factor(config) * per_forward * steps / (H100_BF16_FLOPS * UTILISATION)


def estimate(config: "Config", prompts: int) -> Estimate:
    """The estimate for ``prompts`` prompts still to run under ``config``."""
    videos = _videos(config, prompts)
    if config.generator.model.startswith("tiny"):
        secs = 0.0 if prompts == 0 else SMOKE_LOAD_S + prompts * config.loop.max_rounds * SMOKE_S_PER_ROUND
        return Estimate(prompts, videos, secs, "CPU minutes", BASIS_SMOKE)
    per = seconds_per_video(config)
    if per is None:
        return Estimate(prompts, videos, None, "GPU-hours", "the generator's size is not known before it loads "
                        "(no local or cached config, not in the published table)")
    return Estimate(prompts, videos, per * videos, "GPU-hours", BASIS_GPU, seconds_per_video=per)
