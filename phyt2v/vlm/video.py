"""Real video input for VLMs whose processor has a video half (needs torchvision): the sampled frames go
in as ONE video (temporal patches, the model's video position ids) instead of N separate images.

``video_inputs`` returns None when the processor has no video processor (e.g. the frames processor
used without torchvision) or refuses the video; the caller then feeds the frames as images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def supports_video(processor: Any) -> bool:
    return getattr(processor, "video_processor", None) is not None


def sampled_fps(video: str | Path, num_frames: int) -> float:
    """Frames per second of ``num_frames`` frames spread over the whole video (what the model is told)."""
    from ..store.video_io import probe

    info = probe(Path(video))
    seconds = info.num_frames / info.fps if info.fps else 0.0
    return num_frames / seconds if seconds > 0 else 2.0


def video_inputs(model: Any, processor: Any, frames: list, text: str, fps: float) -> dict[str, Any] | None:
    """Chat inputs with the frames as one video on the model's device, or None (use images)."""
    if not supports_video(processor) or not frames:
        return None
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    try:
        chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        batch = processor(text=[chat], videos=[frames], fps=fps, return_tensors="pt")
    except (TypeError, ValueError, KeyError, ImportError) as e:
        log.info("video input refused by %s (%s); feeding frames as images", type(processor).__name__, e)
        return None
    from .runtime import model_inputs

    return model_inputs(model, batch)


# Qwen-VL's video sampling (qwen-vl-utils 0.0.14, vision_process.py: FPS, FPS_MIN_FRAMES, FPS_MAX_FRAMES,
# FRAME_FACTOR, VIDEO_MIN_TOKEN_NUM / VIDEO_MAX_TOKEN_NUM x 28 x 28 pixels per frame).
FRAME_FACTOR = 2
MIN_FRAMES = 4
MAX_FRAMES = 768
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28


def frame_count_at_fps(total: int, video_fps: float, fps: float, *, min_frames: int = MIN_FRAMES,
                       max_frames: int = MAX_FRAMES) -> int:
    """How many frames qwen-vl-utils' ``smart_nframes`` samples at ``fps``: the video's length x fps, at least
    ``min_frames`` and at most ``max_frames`` and the video's own count, rounded down to an even number (a video
    with fewer than 2 frames gives 1: its one frame)."""
    import math

    if total < FRAME_FACTOR:
        return max(total, 1)
    low = math.ceil(min_frames / FRAME_FACTOR) * FRAME_FACTOR
    high = math.floor(min(max_frames, total) / FRAME_FACTOR) * FRAME_FACTOR
    want = total / video_fps * fps if video_fps > 0 else low
    n = min(max(want, low), high, total)
    return max(FRAME_FACTOR, math.floor(n / FRAME_FACTOR) * FRAME_FACTOR)


def linspace_indices(total: int, n: int) -> list[int]:
    """``torch.linspace(0, total - 1, n).round()`` (qwen-vl-utils' frame indices), without torch."""
    if n <= 1:
        return [0] * max(n, 0)
    step = (total - 1) / (n - 1)
    return [min(total - 1, int(round(i * step))) for i in range(n)]


def fit_pixels(img: Any, min_pixels: int = VIDEO_MIN_PIXELS, max_pixels: int = VIDEO_MAX_PIXELS) -> Any:
    """A PIL image scaled (aspect kept) so that its area lies within [min_pixels, max_pixels]; the model's
    processor then rounds each side to its patch grid."""
    from PIL import Image

    area = img.width * img.height
    if min_pixels <= area <= max_pixels:
        return img
    scale = ((max_pixels if area > max_pixels else min_pixels) / area) ** 0.5
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)


def frames_at_fps(video: str | Path, fps: float, *, num_frames: int | None = None, frame_size: int | None = None,
                  min_pixels: int = VIDEO_MIN_PIXELS, max_pixels: int = VIDEO_MAX_PIXELS) -> tuple[list, float]:
    """(RGB PIL frames, the rate they represent) as qwen-vl-utils samples a video file at ``fps``: the count from
    ``frame_count_at_fps`` (or ``num_frames`` when given), evenly spaced from the first frame to the last, each
    frame's area brought within [min_pixels, max_pixels]; with ``frame_size`` the longest side is capped at it
    instead (small CPU runs)."""
    from PIL import Image

    from ..store.video_io import read_frames

    frames, video_fps = read_frames(Path(video))
    total = len(frames)
    n = min(num_frames, total) if num_frames else frame_count_at_fps(total, video_fps, fps)
    out = []
    for i in linspace_indices(total, n):
        img = Image.fromarray(frames[i]).convert("RGB")
        if frame_size:
            if max(img.size) > frame_size:
                s = frame_size / max(img.size)
                img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BICUBIC)
        else:
            img = fit_pixels(img, min_pixels, max_pixels)
        out.append(img)
    seconds = total / video_fps if video_fps > 0 else 0.0
    return out, (n / seconds if seconds > 0 else fps)
