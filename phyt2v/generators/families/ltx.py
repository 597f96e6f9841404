"""LTX-Video (LTXPipeline): T5, 128 tokens; frames 8k+1, sides multiples of 32 (check_inputs);
``frame_rate`` (25 by default) is passed to the model; ``decode_timestep`` / ``decode_noise_scale``
add noise at VAE decode (the 0.9.1+ cards: 0.03 / 0.025)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .base import Family, Settings, config_value


class LTX(Family):
    name = "ltx"
    classes = ("LTXPipeline",)
    fps = 25
    options = frozenset({"decode_timestep", "decode_noise_scale"})
    tiny = "ltx"
    faster_uncond_skip = False  # one CFG batch, but packed (B, S, C) latents FasterCache cannot split

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        scaling = sum(bool(x) for x in config_value(vae, "spatio_temporal_scaling", (True, True, True, False)))
        s = config_value(vae, "spatial_compression_ratio", int(config_value(vae, "patch_size", 4)) * 2 ** scaling)
        t = config_value(vae, "temporal_compression_ratio", int(config_value(vae, "patch_size_t", 1)) * 2 ** scaling)
        spatial = int(s) * int(config_value(transformer, "patch_size", 1))
        return int(t) * int(config_value(transformer, "patch_size_t", 1)), math.lcm(32, spatial)

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        kw = super().call_kwargs(pipe, s, sig)
        if s.decode_timestep is not None:
            kw["decode_timestep"] = s.decode_timestep
        if s.decode_noise_scale is not None:
            kw["decode_noise_scale"] = s.decode_noise_scale
        return kw
