"""Mochi 1 (MochiPipeline): T5, 256 tokens; VAE x8 spatial, x6 temporal (6k+1 frames), patch 2 (sides
multiple of 16); 30 fps; 64 steps, guidance 4.5. The card renders 85 frames at 480x848 (the signature's
default is 19). Its attention ignores set_attention_backend."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .base import Family, config_value


class Mochi(Family):
    name = "mochi"
    classes = ("MochiPipeline",)
    fps = 30
    attention_dispatch = False
    tiny = "mochi"

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        t = math.prod(config_value(vae, "temporal_expansions", (1, 2, 3)))
        s = math.prod(config_value(vae, "spatial_expansions", (2, 2, 2)))
        return int(t), int(s) * int(config_value(transformer, "patch_size", 2))

    def defaults(self, sig: dict[str, Any], transformer: Any = None) -> dict[str, Any]:
        d = super().defaults(sig, transformer)
        d["height"], d["width"] = d["height"] or 480, d["width"] or 848  # the pipeline's default_*
        return d
