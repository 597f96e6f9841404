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
