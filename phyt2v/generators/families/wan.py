"""Wan 2.1 / 2.2 (WanPipeline): UMT5 text encoder, 512 tokens, prompts cleaned (ftfy, whitespace) first.

Frames 4k+1 (VAE scale_factor_temporal), sides a multiple of scale_factor_spatial x patch (16; 32 for the
TI2V-5B's x16 VAE). Wan 2.2 A14B has a second transformer for low noise (``boundary_ratio`` in the
pipeline config) and takes ``guidance_scale_2``. Flow shift lives on the UniPC scheduler config
(the cards: 3.0 at 480p, 5.0 at 720p). fps is not in the pipeline: 16 (2.1, A14B), 24 (TI2V-5B).
"""

from __future__ import annotations

from typing import Any, Mapping

from .base import Family, Settings, config_value


class Wan(Family):
    name = "wan"
    classes = ("WanPipeline",)
    fps = 16
    options = frozenset({"flow_shift", "guidance_2"})
    tiny = "wan"
    faster_uncond_skip = False  # the conditional and unconditional passes are two transformer calls

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        patch = config_value(transformer, "patch_size", (1, 2, 2))
        return int(config_value(vae, "scale_factor_temporal", 4)), int(config_value(vae, "scale_factor_spatial", 8)) * int(patch[1])

    def defaults(self, sig: dict[str, Any], transformer: Mapping[str, Any] | None = None) -> dict[str, Any]:
        d = super().defaults(sig, transformer)
        # TI2V-5B (48 latent channels, x16 VAE) renders 24 fps; the 2.1 and A14B models 16
        d["fps"] = 24 if int(config_value(transformer, "in_channels", 16)) == 48 else 16
        return d

    def clean(self, prompt: str) -> str:
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        return prompt_clean(prompt)

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        kw = super().call_kwargs(pipe, s, sig)
        if s.guidance_2 is not None:
            if pipe.config.get("boundary_ratio") is None:
                from ...errors import ConfigError

                raise ConfigError("generator.guidance_2 needs a Wan 2.2 pipeline with two transformers "
                                  "(boundary_ratio set); this one has one: remove generator.guidance_2")
            kw["guidance_scale_2"] = s.guidance_2
        return kw
