"""A tiny random-weight Qwen2-VL with a word-level tokenizer, a Qwen chat template and a PIL image processor: the
smoke preset's captioner, vlm-judge scorer and vlm LLM."""

from __future__ import annotations

from pathlib import Path

from .text import WORDS, make_vocab, seeded

VLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]

# Qwen-style chat template: images/videos become <|vision_start|><|image_pad|><|vision_end|>.
VLM_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def vlm_tokenizer():
    """Word-level, case-kept (so 'Yes' and 'No' are single tokens), Qwen chat specials."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(WORDS)) + sorted({w.capitalize() for w in WORDS}) + list(".,!?;:'\"-()")
    vocab = make_vocab(words, ["<unk>"])
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in VLM_SPECIALS])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>", model_max_length=4096)
    tok.chat_template = VLM_CHAT_TEMPLATE
    return tok


def build_tiny_vlm(path: str | Path) -> Path:
    """A tiny Qwen2-VL (2 text layers, hidden 32, vision depth 2) with tokenizer, PIL image
    processor (<= 16 visual tokens per image) and chat template."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(path)
    tok = vlm_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in VLM_SPECIALS}
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    seeded(0)
    return save_tiny_vlm(Qwen2VLForConditionalGeneration(config), tok, path,
                         Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16))


def save_tiny_vlm(model, tok, path: str | Path, image_processor) -> Path:
    """Save a tiny Qwen-VL-style model with the word-level tokenizer, the chat template and its image
    processor, ending generation at ``<|im_end|>``; returns the folder."""
    path = Path(path)
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    (path / "chat_template.jinja").write_text(VLM_CHAT_TEMPLATE, encoding="utf-8")
    image_processor.save_pretrained(str(path))
    return path
