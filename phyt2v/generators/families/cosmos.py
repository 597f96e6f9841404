"""Cosmos Predict 2.5 (Cosmos2_5_PredictBasePipeline), text to world (no image or video given).

Qwen2.5-VL (Cosmos-Reason1) reads the prompt inside a chat template (a system turn and the user turn), padded or cut
to 512 tokens, template included: the budget counts the whole templated sequence. Wan VAE (x8, x4) and patch 2:
frames 4k+1 (93 on the card), sides multiples of 16. 16 fps (the docs' export). ``guidance_scale`` is CFG (7).
The pipeline refuses to run without its safety checker (NVIDIA's Open Model License): real models need
``cosmos_guardrail``; the published transformer concatenates a padding mask resized with torchvision."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from .base import Encoder, Family, config_value

SYSTEM = "You are a helpful assistant who will provide prompts to an image generator."  # _get_prompt_embeds'


class Cosmos(Family):
    name = "cosmos-predict2.5"
    classes = ("Cosmos2_5_PredictBasePipeline",)
    fps = 16
    tiny = "cosmos"
    faster_uncond_skip = False  # not checked against its CFG batch layout: FasterCache's skip stays off

    def encoders(self, pipe: Any, sig: dict[str, Any]) -> list[Encoder]:
        tok = pipe.tokenizer

        def qwen(p: str) -> int:
            chat = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                    {"role": "user", "content": [{"type": "text", "text": p}]}]
            ids = tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=False, add_vision_id=False)
            return len(ids["input_ids"] if not isinstance(ids, list) else ids)

        return [Encoder("text_encoder", qwen, int(sig["max_sequence_length"]))]

    def missing(self, index: Any) -> str | None:
        checker = (getattr(index, "components", None) or {}).get("safety_checker")
        tiny = isinstance(checker, list) and str(checker[0]).startswith("phyt2v.")
        if tiny:  # diffusers loads a component class only from a module already imported
            import_module(checker[0])
        elif find_spec("cosmos_guardrail") is None:
            return ("Cosmos Predict 2.5 runs only with its safety checker (NVIDIA's Open Model License): "
                    "pip install cosmos_guardrail")
        if config_value(getattr(index, "transformer", None), "concat_padding_mask", False) and find_spec("torchvision") is None:
            return "Cosmos Predict 2.5's transformer resizes its padding mask with torchvision: pip install torchvision"
        return None
