"""Inputs for mPLUG-Owl-Video exactly as the VideoPhy reference builds them.

Frames: ``seg=(N-1)/k; start=int(seg/2); idx=[start+int(round(seg*i)) for i in range(k)]``
(indices repeat when N < k), each frame scaled to 224x224 by ffmpeg without keeping the aspect
ratio (the reference's decord reader does the same), CLIP mean/std, tensor (3, k, 224, 224).
Text: BOS, then the prompt split on the media marker (and, for VideoCon, on the turn markers
``AI: `` and ``\\nHuman: ``), each piece encoded alone with the slow LLaMA sentencepiece tokenizer,
``<|video|>`` expanded to 65 media positions (id -2), no EOS.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from ...errors import InputError, VideoError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VIDEO = "<|video|>"
IMAGE = "<image>"
MEDIA_IDS = {IMAGE: -1, VIDEO: -2}  # the reference's ids for media positions
TURN_MARKERS = ("AI: ", "\nHuman: ")


def frame_indices(num_frames: int, k: int = 32) -> list[int]:
    """The reference's sampling formula (np.round is round-half-to-even, as Python's round)."""
    if num_frames <= 0:
        raise VideoError("video has no frames")
    seg = float(num_frames - 1) / k
    start = int(seg / 2)
    return [start + int(round(seg * i)) for i in range(k)]


class _QuietRescale(logging.Filter):
    """imageio warns on every read that asks ffmpeg for another size; that is the point here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


_QUIET = _QuietRescale()


def load_frames(path: str | Path, k: int = 32, size: int = 224) -> tuple[np.ndarray, list[int], int]:
    """Sampled frames (k, size, size, 3) uint8, their indices, and the video's frame count.
    ffmpeg squeezes each frame to size x size, as the reference's decord reader does."""
    from ...store.video_io import read_frames

    for name in ("imageio_ffmpeg", "imageio.plugins.ffmpeg"):
        logging.getLogger(name).addFilter(_QUIET)  # idempotent
    frames, _ = read_frames(path, size=(size, size))
    idx = frame_indices(len(frames), k)
    return np.stack([frames[i] for i in idx]), idx, len(frames)


def read_image_stats(folder: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """CLIP mean/std, or those of the checkpoint's ``preprocessor_config.json``."""
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        data = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
        return tuple(data.get("image_mean", CLIP_MEAN)), tuple(data.get("image_std", CLIP_STD))
    return CLIP_MEAN, CLIP_STD


def to_pixels(frames: np.ndarray, mean=CLIP_MEAN, std=CLIP_STD):
    """(k, H, W, 3) uint8 -> float32 tensor (3, k, H, W), rescaled by 1/255 and normalised."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)
    x = (x - torch.tensor(mean)) / torch.tensor(std)
    return x.permute(3, 0, 1, 2).contiguous()


class SentencePieceTokenizer:
    """The slow LLaMA tokenizer (legacy mode): each text encoded by sentencepiece directly."""

    def __init__(self, model_file: str | Path):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.bos_id, self.eos_id, self.unk_id = self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id()
        self.pad_id = self.sp.pad_id()

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text)) if text else []

    def decode(self, ids: list[int]) -> str:
        special = {self.bos_id, self.eos_id, self.unk_id, self.pad_id}
        return self.sp.decode([int(i) for i in ids if int(i) not in special and 0 <= int(i) < len(self.sp)])

    def first_id(self, word: str) -> int:
        return self.encode(word)[0]


def check_caption(text: str, what: str = "prompt") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"empty {what}: pass a non-empty text to score against")
    for marker in MEDIA_IDS:
        if marker in text:
            raise InputError(f"{what} contains the reserved marker {marker!r}; remove it")
    return text


def tokenize(tok: SentencePieceTokenizer, prompt: str, *, split_turns: bool, media_length: int = 65,
             max_length: int | None = None) -> list[int]:
    """Token ids of ``prompt`` with media positions; ``max_length`` applies the reference's cut
    (VideoCon's data loader: at most ``max_length + 1`` ids)."""
    markers = list(MEDIA_IDS) + (list(TURN_MARKERS) if split_turns else [])
    pattern = "|".join(map(re.escape, markers))
    chunks = [c for c in re.split(f"({pattern})", prompt) if c]
    ids = [tok.bos_id]
    cap = None if max_length is None else max_length + 1
    for i, chunk in enumerate(chunks):
        if cap is not None and len(ids) >= cap:
            break
        if chunk in MEDIA_IDS:
            if cap is not None and len(ids) + media_length > cap:
                break
            ids += [MEDIA_IDS[chunk]] * media_length
            continue
        piece = tok.encode(chunk)
        if split_turns and i > 0 and chunks[i - 1] == "AI: ":  # an answer: closed by EOS
            if cap is not None and len(ids) + len(piece) >= max_length:
                piece = piece[: max_length - len(ids)]
            piece = piece + [tok.eos_id]
        elif cap is not None and i > 0 and len(ids) + len(piece) >= cap:  # the first piece is never cut
            piece = piece[: cap - len(ids)]
        ids += piece
    return ids
