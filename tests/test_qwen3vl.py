"""Qwen3-VL next to Qwen2.5-VL: a tiny random-weight Qwen3-VL built from its config captions a real
mp4 through the captioner and answers text-only chat as the LLM (CPU, no torchvision: frames as images)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry
from phyt2v.config import load_config  # noqa: E402
from phyt2v.vlm import runtime as vlm  # noqa: E402

VIDEOS = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "videos").glob("*.mp4"))


@pytest.fixture(scope="module")
def tiny_qwen3vl(tmp_path_factory) -> Path:
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from phyt2v.tiny.text import seeded
    from phyt2v.tiny.vlm import VLM_SPECIALS, save_tiny_vlm, vlm_tokenizer

    path = tmp_path_factory.mktemp("qwen3vl")
    tok = vlm_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in VLM_SPECIALS}
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=4096,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32,
                           num_position_embeddings=64, deepstack_visual_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    seeded(0)
    return save_tiny_vlm(Qwen3VLForConditionalGeneration(config), tok, path,
                         Qwen2VLImageProcessorPil(patch_size=16, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 16))


@pytest.mark.skipif(not VIDEOS, reason="no shared mp4 videos")
def test_qwen3vl_captions_and_answers_as_the_llm_from_one_load(tiny_qwen3vl):
    vlm.clear_cache()
    config = load_config("smoke", llm={"backend": "vlm", "max_tokens": 16},
                         captioner={"model": str(tiny_qwen3vl), "max_new_tokens": 8, "frame_size": 64})
    before = registry.LOADS["captioner"]
    cap = registry.build("captioner", config, cache=False)
    llm = registry.build("llm", config, cache=False)
    assert registry.LOADS["captioner"] - before == 1 and llm.model is cap.model
    assert type(cap.model).__name__ == "Qwen3VLForConditionalGeneration"
    text = cap.caption(VIDEOS[0])
    assert isinstance(text, str) and text.strip()
    assert isinstance(llm.complete([{"role": "user", "content": "Describe the physics."}]), str)
    assert llm.last_new_tokens > 0
