"""Kandinsky 5 T2V (Kandinsky5T2VPipeline): Qwen2.5-VL reads the prompt inside a fixed chat template whose first
128 tokens are cropped (``prompt_template_encode_start_idx``), 512 tokens kept (``max_sequence_length``): the
sequence the transformer reads, so the budget. CLIP-L (77 tokens) feeds only the pooled vector: recorded, not
binding. Both see the prompt cleaned (ftfy when installed, HTML unescaped, whitespace collapsed). HunyuanVideo VAE
(x8 spatial, x4 temporal) and patch 2: frames 4k+1, sides multiples of 16 (check_inputs). 24 fps (the cards
render 121 frames, ~5 s). ``guidance_scale`` is CFG (two transformer calls); the nocfg and distilled checkpoints
take 1.0. Its negative embeddings are not repeated per video, so several seeds go as a repeated prompt list."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Encoder, Family, config_value


class Kandinsky5(Family):
    name = "kandinsky5"
    classes = ("Kandinsky5T2VPipeline",)
    fps = 24
    tiny = "kandinsky5"
    videos_per_prompt = False
    faster_uncond_skip = False  # the conditional and unconditional passes are two transformer calls

    def hidden_size(self, transformer: Mapping[str, Any] | None) -> int | None:
        dim = config_value(transformer, "model_dim")
        return int(dim) if dim else None

    def clean(self, prompt: str) -> str:
        from diffusers.pipelines.kandinsky5.pipeline_kandinsky import prompt_clean

        return prompt_clean(prompt)

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        tok, tok2, crop = pipe.tokenizer, pipe.tokenizer_2, int(pipe.prompt_template_encode_start_idx)
        template = pipe.prompt_template

        def qwen(p: str) -> int:
            ids = tok(text=[template.format(self.clean(p))], images=None, videos=None)["input_ids"][0]
            return len(ids) - crop

        encs = [Encoder("text_encoder", qwen, int(sig["max_sequence_length"]))]
        if tok2 is not None:  # _encode_prompt_clip: max_length 77, pooler_output only
            encs.append(Encoder("text_encoder_2", lambda p: len(tok2(self.clean(p), truncation=False).input_ids), 77,
                                pooled_only=True))
        return encs
