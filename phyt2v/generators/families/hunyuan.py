"""HunyuanVideo (HunyuanVideoPipeline): Llama encoder fed a prompt template whose first ``crop_start``
tokens are cropped (256 tokens kept): the token sequence the transformer reads, so its 256 tokens are the
budget the loop writes to. CLIP-L (77 tokens) feeds only the pooled vector: its limit is recorded and its cut
reported as truncation, but it does not bind (``Encoder.pooled_only``). ``guidance_scale`` is embedded (distilled)
guidance; real CFG with a negative prompt is ``true_cfg_scale`` (generator.true_cfg). Frames 4k+1,
sides multiples of 16 (VAE x8, patch 2); 24 fps. Flow shift is the FlowMatchEuler ``shift``."""

from __future__ import annotations

from typing import Any

from .base import Encoder, Family, Settings


class Hunyuan(Family):
    name = "hunyuanvideo"
    classes = ("HunyuanVideoPipeline",)
    fps = 24
    options = frozenset({"flow_shift", "true_cfg"})
    tiny = "hunyuan"
    faster_uncond_skip = False  # guidance-distilled: no unconditional pass (true_cfg: a second call)

    def static_limit(self, sig: dict[str, Any], index: Any) -> int | None:
        return int(sig["max_sequence_length"])  # the Llama encoder's; CLIP's 77 is pooled only

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        template = sig["prompt_template"]
        crop = template.get("crop_start")
        if crop is None:  # the pipeline's own rule: template tokens minus the placeholder and <|eot_id|>
            crop = len(pipe.tokenizer(template["template"]).input_ids) - 2
        tok, tok2 = pipe.tokenizer, pipe.tokenizer_2

        def llama(p: str) -> int:
            return len(tok(template["template"].format(p), truncation=False).input_ids) - crop

        encs = [Encoder("text_encoder", llama, int(sig["max_sequence_length"]))]
        if tok2 is not None:  # CLIP: encode_prompt passes max_sequence_length=77
            encs.append(Encoder("text_encoder_2", lambda p: len(tok2(p, truncation=False).input_ids), 77,
                                pooled_only=True))
        return encs

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        kw = super().call_kwargs(pipe, s, sig)
        if s.true_cfg is not None:
            if not s.negative_prompt:
                from ...errors import ConfigError

                raise ConfigError("generator.true_cfg (HunyuanVideo's real CFG) needs a negative prompt: set "
                                  "generator.options.negative_prompt")
            kw["true_cfg_scale"] = s.true_cfg
        return kw
