"""The generic image-text-to-text path (AutoModelForImageTextToText + AutoProcessor) on a VLM that is not
Qwen: a tiny random-weight LLaVA (CLIP vision + Llama) with its own LlavaProcessor, as captioner and LLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry
from phyt2v.config import load_config  # noqa: E402
from phyt2v.vlm import runtime as vlm  # noqa: E402

VIDEOS = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "videos").glob("*.mp4"))
TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}"
            "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
            "{% endfor %}{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from phyt2v.tiny.text import seeded
    from phyt2v.tiny.vlm import vlm_tokenizer

    path = tmp_path_factory.mktemp("llava")
    tok = vlm_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tok.chat_template = TEMPLATE
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id),
        image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="full")
    seeded(0)
    LlavaForConditionalGeneration(config).save_pretrained(str(path))
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="full",
                   chat_template=TEMPLATE, num_additional_image_tokens=1).save_pretrained(str(path))
    return path


@pytest.mark.skipif(not VIDEOS, reason="no shared mp4 videos")
def test_llava_through_the_generic_path(tiny_llava):
    vlm.clear_cache()
    config = load_config("smoke", llm={"backend": "vlm", "max_tokens": 16},
                         captioner={"model": str(tiny_llava), "num_frames": 2, "max_new_tokens": 6, "frame_size": 64})
    cap = registry.build("captioner", config, cache=False)
    llm = registry.build("llm", config, cache=False)
    assert type(cap.processor).__name__ == "LlavaProcessor"  # its own processor, not the Qwen frames one
    assert llm.model is cap.model
    assert cap.caption(VIDEOS[0]).strip()
    assert isinstance(llm.complete([{"role": "user", "content": "hi"}]), str) and llm.last_new_tokens > 0
