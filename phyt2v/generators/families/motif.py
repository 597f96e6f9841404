"""Motif-Video (MotifVideoPipeline): a T5Gemma2 encoder, 512 tokens (special tokens added). Wan VAE (x8, x4) and the
transformer's patch: frames 4k+1, sides multiples of 8 x patch. 24 fps (the docs' 121 frames at 736x1280).
Guidance lives on ``pipe.guider`` (adaptive projected guidance on the published model): generator.guidance sets its
``guidance_scale``; left unset, the guider's own stays. Flow shift is the FlowMatchEuler scheduler's ``shift``. No LoRA
loader in diffusers 0.42; it takes a step callback."""

from __future__ import annotations

from typing import Any

from .base import Family, Settings


class Motif(Family):
    name = "motif-video"
    classes = ("MotifVideoPipeline",)
    fps = 24
    tiny = "motif"
    options = frozenset({"flow_shift"})  # FlowMatchEuler's shift (the card's recommended 15.0)
    faster_uncond_skip = False  # guidance runs through pipe.guider, one transformer call per branch

    def defaults(self, sig: dict[str, Any], transformer: Any = None) -> dict[str, Any]:
        return {**super().defaults(sig, transformer), "guidance": None}  # on the guider, not in the call

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        if s.guidance is not None and hasattr(getattr(pipe, "guider", None), "guidance_scale"):
            pipe.guider.guidance_scale = s.guidance
        return super().call_kwargs(pipe, s, sig)
