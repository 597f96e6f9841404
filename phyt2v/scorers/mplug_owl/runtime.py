"""What both native scorers share: resolve and load the checkpoint once, the tokenizer, the
frame pipeline, and device/dtype choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import registry
from ...errors import BackendError, InputError
from ...runtime.devices import resolve_device, resolve_dtype
from .processor import SentencePieceTokenizer, load_frames, read_image_stats, to_pixels


@dataclass
class PreparedVideo:
    """CPU-side work for one video and prompt (decoded frames, token ids); made in a thread."""

    video: Path
    prompt: str
    pixels: Any  # torch.Tensor (3, k, 224, 224) float32
    frame_indices: list[int]
    num_frames: int
    ids: dict[str, list[int]] = field(default_factory=dict)  # task -> token ids
    meta: dict[str, Any] = field(default_factory=dict)


class OwlRuntime:
    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", num_frames: int = 32,
                 quantization: str = "none"):
        from ...runtime.quant import check_quantization, quantize_module
        from .loading import load_model, resolve_model_dir

        if not isinstance(num_frames, int) or num_frames < 1:
            raise InputError(f"scorer num_frames must be a positive integer (got {num_frames!r}); the reference uses 32")
        self.folder = tiny_dir() if model == "tiny" else resolve_model_dir(model)
        if not (self.folder / "tokenizer.model").is_file():
            raise BackendError(f"{self.folder} has no tokenizer.model (the LLaMA sentencepiece model); "
                               "use the complete checkpoint folder.")
        self.device = resolve_device(device, "scorer.device")
        self.dtype = resolve_dtype(dtype, self.device, "scorer.dtype")
        check_quantization(quantization, self.device, "scorer.quantization", "torchao")
        # quantized: loaded to CPU RAM, then each layer quantized as it moves to the GPU (no 16-bit peak there)
        load_on = self.device if quantization == "none" else "cpu"
        self.model, self.config = load_model(self.folder, dtype=self.dtype, device=load_on)
        self.quantization = quantize_module(self.model, quantization, self.device, "scorer.quantization")
        registry.record_load("scorer")
        self.tokenizer = SentencePieceTokenizer(self.folder / "tokenizer.model")
        self.mean, self.std = read_image_stats(self.folder)
        self.num_frames = num_frames
        self.image_size = self.config.vision.image_size

    def prepare_video(self, video: Path, prompt: str) -> PreparedVideo:
        frames, idx, n = load_frames(video, self.num_frames, self.image_size)
        return PreparedVideo(video=Path(video), prompt=prompt, pixels=to_pixels(frames, self.mean, self.std),
                             frame_indices=idx, num_frames=n)

    def encode(self, items: list[PreparedVideo]):
        import torch

        pixels = torch.stack([it.pixels for it in items])
        return self.model.encode_video(pixels)

    def check_length(self, ids: list[int], video: Path) -> None:
        limit = self.model.language_model.config.max_position_embeddings
        if len(ids) > limit:
            raise InputError(f"prompt for {video.name} is {len(ids)} tokens with the video, over the scorer's "
                             f"{limit}-position limit; shorten the prompt")


def tiny_dir() -> Path:
    """``model: tiny``: the tiny random-weight checkpoint that answers with a rating (``tiny.build_rating_checkpoint``),
    built once into phyt2v's cache."""
    from ...tiny.build import tiny_model_dir
    from .tiny import build_rating_checkpoint

    return tiny_model_dir("mplug-owl-rating", builder=build_rating_checkpoint)
