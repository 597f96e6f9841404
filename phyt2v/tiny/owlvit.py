"""A tiny random-weight OWL-ViT (LVD's stage-2 detector) with a word-level CLIP-style tokenizer and a PIL image
processor: exercises ``views/lvd_detect.py`` without the hub. Its detections are noise."""

from __future__ import annotations

from pathlib import Path

from .text import seeded, word_tokenizer

IMAGE_SIZE = 32


def build_tiny_owlvit(path: str | Path) -> Path:
    """OwlViTForObjectDetection (text and vision: 2 layers, hidden 32, 32x32 images in 8x8 patches, so 16 boxes per
    image), saved with its processor into ``path``."""
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    path = Path(path)
    tok = word_tokenizer(["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                         eos="<|endoftext|>", max_length=16)
    config = OwlViTConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=32)
    seeded(0)
    OwlViTForObjectDetection(config).eval().save_pretrained(str(path))
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    OwlViTProcessor(image_processor=OwlViTImageProcessorPil(size=size, crop_size=size),
                    tokenizer=tok).save_pretrained(str(path))
    return path
