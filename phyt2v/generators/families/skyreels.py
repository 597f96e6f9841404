"""SkyReels-V2 (SkyReelsV2Pipeline, and SkyReelsV2DiffusionForcingPipeline for long video): the Wan architecture.

UMT5-XXL, 512 tokens, every prompt cleaned with ``ftfy.fix_text`` first (the pipeline calls it unchecked: ftfy is a
phyt2v dependency). Wan VAE (x8 spatial, x4 temporal) and patch 2: frames 4k+1, sides multiples of 16. 24 fps (the
cards render 97 frames at 540P, 121 at 720P). Flow shift on the UniPC scheduler (the cards: 8.0 for text-to-video).
The diffusion-forcing pipeline denoises blocks of frames asynchronously and takes ``fps`` (it conditions on 16 vs
other rates) and, through ``generator.options``, ``ar_step`` (0: synchronous; the card's long-video setting 5),
``causal_block_size``, ``base_num_frames`` (the window, 97 at 540P), ``overlap_history`` (needed when num_frames
exceeds the window: 17 or 37) and ``addnoise_condition`` (20 for long videos)."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Family, Settings, signature_defaults
from .wan import Wan

FORCING_OPTIONS = {"ar_step": int, "causal_block_size": int, "base_num_frames": int, "overlap_history": int,
                   "addnoise_condition": (int, float)}


class SkyReels(Wan):
    name = "skyreels-v2"
    classes = ("SkyReelsV2Pipeline",)
    fps = 24
    options = frozenset({"flow_shift"})
    tiny = "skyreels"

    def defaults(self, sig: dict[str, Any], transformer: Any = None) -> dict[str, Any]:
        return Family.defaults(self, sig, transformer)  # Wan's TI2V fps rule does not apply

    def clean(self, prompt: str) -> str:
        from diffusers.pipelines.skyreels_v2.pipeline_skyreels_v2 import prompt_clean

        return prompt_clean(prompt)


class SkyReelsForcing(SkyReels):
    name = "skyreels-v2-df"
    classes = ("SkyReelsV2DiffusionForcingPipeline",)
    tiny = "skyreels-df"
    call_options = FORCING_OPTIONS

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        return {**super().call_kwargs(pipe, s, sig), "fps": s.fps}

    def check(self, num_frames: int | None, options: Mapping[str, Any]) -> None:
        from diffusers import SkyReelsV2DiffusionForcingPipeline

        window = options.get("base_num_frames") or signature_defaults(SkyReelsV2DiffusionForcingPipeline)["base_num_frames"]
        if num_frames and num_frames > window and options.get("overlap_history") is None:
            from ...errors import ConfigError

            raise ConfigError(f"generator.num_frames {num_frames} is longer than the diffusion-forcing window of "
                              f"{window} frames: set generator.options.overlap_history (17 or 37, the card's) or "
                              f"num_frames <= {window}")
