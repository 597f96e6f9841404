"""HunyuanVideo 1.5 (HunyuanVideo15Pipeline): Qwen2.5-VL (1000 tokens after its template crop) + ByT5 for
quoted text; VAE x16 spatial, x4 temporal (4k+1 frames); 24 fps. Guidance lives on ``pipe.guider``
(generator.guidance sets its ``guidance_scale``). Its ``__call__`` takes no step callback in diffusers 0.42:
progress shows an indeterminate 'generating' state. The token count is the pipeline's: the Qwen chat template
(its system message, the user turn, the generation prompt) tokenized, less the 108 cropped tokens
(``prompt_template_encode_start_idx``), against 1000 (``tokenizer_max_length``). ByT5 reads only quoted text (glyphs)
and is not counted."""

from __future__ import annotations

from typing import Any

from .base import Encoder, Family, Settings, config_value


class Hunyuan15(Family):
    name = "hunyuanvideo-1.5"
    classes = ("HunyuanVideo15Pipeline",)
    fps = 24
    step_callback = False
    videos_per_prompt = False  # 0.42 fails reshaping its embeddings when num_videos_per_prompt > 1: repeat the prompt
    tiny = "hunyuan15"
    faster_uncond_skip = False  # guidance runs through pipe.guider, one transformer call per branch

    def defaults(self, sig: dict[str, Any], transformer: Any = None) -> dict[str, Any]:
        d = super().defaults(sig, transformer)
        d["guidance"] = None  # on the guider, not in the call
        if d["height"] is None and d["width"] is None:  # the pipeline's own: 16:9 nearest its bucket of target_size
            import numpy
            from diffusers.pipelines.hunyuan_video1_5.image_processor import generate_crop_size_list, get_closest_ratio

            target = int(config_value(transformer, "target_size", 640))
            sizes = generate_crop_size_list(base_size=target, patch_size=16)  # patch: the VAE's x16
            ratios = numpy.array([round(h / w, 5) for h, w in sizes])
            d["height"], d["width"] = (int(x) for x in get_closest_ratio(9, 16, ratios, sizes)[0])
        return d

    def static_limit(self, sig: dict[str, Any], index: Any) -> int | None:
        return 1000  # the pipeline's tokenizer_max_length (set in __init__, not in the signature)

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        from diffusers.pipelines.hunyuan_video1_5.pipeline_hunyuan_video1_5 import format_text_input

        tok, crop, system = pipe.tokenizer, int(pipe.prompt_template_encode_start_idx), pipe.system_message

        def qwen(p: str) -> int:
            ids = tok.apply_chat_template(format_text_input([p], system)[0], add_generation_prompt=True, tokenize=True)
            return len(ids["input_ids"] if not isinstance(ids, list) else ids) - crop

        return [Encoder("text_encoder", qwen, int(pipe.tokenizer_max_length))]

    def call_kwargs(self, pipe: Any, s: Settings, sig: dict[str, Any]) -> dict[str, Any]:
        if s.guidance is not None and hasattr(getattr(pipe, "guider", None), "guidance_scale"):
            pipe.guider.guidance_scale = s.guidance
        return super().call_kwargs(pipe, s, sig)
