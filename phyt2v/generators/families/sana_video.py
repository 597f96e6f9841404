"""Sana-Video (SanaVideoPipeline): the frame count is ``frames``, not ``num_frames``.

Gemma-2 text encoder: the pipeline lowercases the prompt, prepends its complex human instruction (CHI) and keeps the
first token and the last ``max_sequence_length - 1`` (300 in all): the CHI's last token and up to 298 prompt tokens,
so a prompt is counted as those 2 + its tokens after the CHI, against 300. Wan VAE (x8, x4) and patch 2, with sides
multiples of 32 (check_inputs): frames 4k+1. 16 fps (the docs' 81 frames at 480x832). ``guidance_scale`` is CFG (6).
Resolution binning (the pipeline maps sizes to its trained aspect-ratio buckets and resizes back) stays on where the
pipeline has buckets for the transformer's ``sample_size`` (30: 480p, 22: 720p) and is off elsewhere (it raises
there). ``generator.options.motion_score`` appends " motion score: N." to the prompt, as the docs' examples (30)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .base import Encoder, Family, Settings, config_value

BINNED_SAMPLE_SIZES = (30, 22)  # the pipeline's ASPECT_RATIO_480_BIN / _720_BIN


class SanaVideo(Family):
    name = "sana-video"
    classes = ("SanaVideoPipeline",)
    fps = 16
    tiny = "sana-video"
    frames_arg = "frames"
    call_options = {"motion_score": (int, float)}
    faster_uncond_skip = False  # not checked against its CFG batch layout: FasterCache's skip stays off

    def rules(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        t, s = super().rules(vae, transformer)
        return t, math.lcm(32, s)

    def token_grid(self, vae: Mapping[str, Any] | None, transformer: Mapping[str, Any] | None) -> tuple[int, int]:
        return super().rules(vae, transformer)  # a token is VAE x patch (16 px); x32 is check_inputs' rule

    def clean(self, prompt: str) -> str:
        return prompt.lower().strip()  # _text_preprocessing without clean_caption

    def text(self, prompt: str, s: Settings) -> str:
        score = s.options.get("motion_score")
        return prompt if score is None else f"{prompt} motion score: {score}."

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        tok, limit = pipe.tokenizer, int(sig["max_sequence_length"])
        chi = "\n".join(sig.get("complex_human_instruction") or [])
        head = len(tok.encode(chi)) if chi else 0

        def gemma(p: str) -> int:
            n = len(tok(chi + self.clean(p), add_special_tokens=True, truncation=False).input_ids)
            return n - head + 2 if chi else n

        return [Encoder("text_encoder", gemma, limit)]

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        kw = super().call_kwargs(pipe, s, sig)
        binned = config_value(getattr(pipe.transformer, "config", None), "sample_size") in BINNED_SAMPLE_SIZES
        kw["use_resolution_binning"] = binned
        return kw
