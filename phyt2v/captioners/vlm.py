"""Caption a video with an image-text-to-text VLM (default Qwen2.5-VL-7B-Instruct) over sampled frames."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import check_options
from ..errors import InputError
from ..resources import prompts_dir

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def caption_instruction(num_frames: int, objects: list[str] | None = None) -> str:
    """The instruction from ``prompts/caption.md`` with the frame count and objects filled in."""
    names = [o.strip() for o in objects or [] if o and o.strip()]
    if not names:
        what = "the main objects"
    elif len(names) == 1:
        what = names[0]
    else:
        what = ", ".join(names[:-1]) + " and " + names[-1]
    text = (prompts_dir() / "caption.md").read_text(encoding="utf-8").strip()
    return text.replace("{{num_frames}}", str(num_frames)).replace("{{objects}}", what)


class VLMCaptioner:
    """``caption(video, objects=...)``: greedy description of motion, contact and deformation."""

    backend = "vlm"
    quantization_path = "transformers"  # runtime/quant.py

    def __init__(self, model: str = DEFAULT_MODEL, *, num_frames: int = 8, max_new_tokens: int = 256,
                 frame_size: int = 448, device: str = "auto", dtype: str = "auto", quantization: str = "none"):
        from ..vlm.runtime import get_vlm

        self.model_id = model
        self.num_frames = num_frames
        self.max_new_tokens = max_new_tokens
        self.frame_size = frame_size
        self.model, self.processor = get_vlm(model, device, dtype, quantization)

    @classmethod
    def from_config(cls, config: "Config") -> "VLMCaptioner":
        c = config.captioner
        check_options("captioner", "vlm", c.options)
        return cls(c.model, num_frames=c.num_frames, max_new_tokens=c.max_new_tokens,
                   frame_size=c.frame_size, device=c.device, dtype=c.dtype, quantization=c.quantization)

    def caption(self, video: Path, *, objects: list[str] | None = None) -> str:
        import torch

        from ..vlm.runtime import LOCK, build_inputs, tokenizer_of, video_frames

        if not isinstance(video, (str, Path)):
            raise InputError(f"caption() needs a video path, got {type(video).__name__}")
        from ..vlm.video import sampled_fps, supports_video, video_inputs

        frames = video_frames(video, self.num_frames, self.frame_size)
        question = caption_instruction(len(frames), objects)
        inputs = None
        if supports_video(self.processor):  # torchvision present: the frames as one video
            inputs = video_inputs(self.model, self.processor, frames, question, sampled_fps(video, len(frames)))
        if inputs is None:
            inputs = build_inputs(self.model, self.processor, frames, question)
        tok = tokenizer_of(self.processor)
        gen: dict[str, Any] = dict(max_new_tokens=self.max_new_tokens, do_sample=False)
        if tok.pad_token_id is not None:
            gen["pad_token_id"] = tok.pad_token_id
        with LOCK, torch.inference_mode():
            out = self.model.generate(**inputs, **gen)
        new = out[:, inputs["input_ids"].shape[1]:]
        text = tok.batch_decode(new, skip_special_tokens=True)[0] if new.numel() else ""
        return " ".join(text.split())
