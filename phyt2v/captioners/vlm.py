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
    device_methods = ("caption", "locate")  # the swap placement moves the VLM to the GPU for these

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

    def locate(self, video: Path, objects: list[str], times: list[float]) -> list[list[list[float] | None]]:
        """Each object's box on the frames at ``times`` (fractions of the video's length), one question per frame
        (``grounding.py``: the question, Qwen2.5-VL's pixel boxes, Qwen3-VL's and Qwen2-VL's 0-1000 boxes): per
        time, each object's ``[x0, y0, x1, y1]`` as fractions (None where the model gave no box), in the order of
        ``objects`` (a name may repeat)."""
        import torch

        from ..store.video_io import frames_at
        from ..vlm.runtime import LOCK, build_inputs, tokenizer_of
        from .grounding import box_format, fit_frame, instruction, match, parse_boxes

        if not isinstance(video, (str, Path)):
            raise InputError(f"locate() needs a video path, got {type(video).__name__}")
        names = [str(o).strip() for o in objects]
        if not names or not all(names):
            raise InputError(f"locate() needs the objects' names, got {objects!r}")
        fmt = box_format(getattr(self.model.config, "model_type", None), self.model_id)
        tok = tokenizer_of(self.processor)
        gen: dict[str, Any] = dict(max_new_tokens=max(self.max_new_tokens, 32 * len(names) + 16), do_sample=False)
        if tok.pad_token_id is not None:
            gen["pad_token_id"] = tok.pad_token_id
        out = []
        for arr in frames_at(video, times):
            img = fit_frame(arr, self.frame_size)
            inputs = build_inputs(self.model, self.processor, [img], instruction(list(dict.fromkeys(names))))
            with LOCK, torch.inference_mode():
                ids = self.model.generate(**inputs, **gen)[:, inputs["input_ids"].shape[1]:]
            text = tok.batch_decode(ids, skip_special_tokens=True)[0] if ids.numel() else ""
            out.append(match(names, parse_boxes(text, fmt, seen_size(inputs, self.processor, img))))
        return out


def seen_size(inputs: dict[str, Any], processor: Any, img: Any) -> tuple[float, float]:
    """(width, height) of the image as the model saw it: the processor's patch grid x patch size (Qwen-VL), else
    the image's own size. Qwen2.5-VL's pixel boxes refer to it."""
    grid = inputs.get("image_grid_thw")
    if grid is None:
        return float(img.width), float(img.height)
    patch = int(getattr(getattr(processor, "image_processor", None), "patch_size", None) or 14)
    return float(grid[0][2]) * patch, float(grid[0][1]) * patch
