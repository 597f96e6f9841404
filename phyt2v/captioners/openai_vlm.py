"""Caption a video through an OpenAI-compatible vision chat endpoint (``captioner.backend: openai``): vLLM serving
Qwen3-VL or Tarsier2, SGLang, or a provider's OpenAI-compatible API.

The frames are sampled as the local captioner samples them and sent as base64 JPEG images, or as one mp4
(``captioner.options.video: true``, for servers like vLLM that take ``video_url``); the instruction is the local
captioner's (``prompts/caption.md``); the reply is greedy (temperature 0), at most ``captioner.max_new_tokens``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import check_options
from ..errors import InputError
from .vlm import caption_instruction

if TYPE_CHECKING:
    from ..config import Config

OPTIONS = ("video",)


class OpenAIVLMCaptioner:
    """``caption(video, objects=...)``: the served model's description of motion, contact and deformation."""

    backend = "openai"
    quantization_note = "the model runs on the endpoint's server; quantize it there"  # captioner.quantization refused

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 num_frames: int = 8, max_new_tokens: int = 256, frame_size: int = 448, video: bool = False,
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0):
        from ..vlm.served import ServedVLM

        self.client = ServedVLM(role="captioner", model=model, base_url=base_url, api_key_env=api_key_env,
                                timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s)
        self.model_id = model
        self.base_url = self.client.base_url
        self.num_frames, self.max_new_tokens, self.frame_size, self.video = num_frames, max_new_tokens, frame_size, video

    @classmethod
    def from_config(cls, config: "Config") -> "OpenAIVLMCaptioner":
        from ..runtime.quant import check_applies
        from ..vlm.served import video_option

        c = config.captioner
        check_applies("captioner", cls.backend, cls, c.quantization)
        opts = check_options("captioner", cls.backend, c.options, OPTIONS)
        return cls(c.model, base_url=c.base_url, api_key_env=c.api_key_env, num_frames=c.num_frames,
                   max_new_tokens=c.max_new_tokens, frame_size=c.frame_size,
                   video=video_option("captioner", opts), timeout_s=c.timeout_s, max_retries=c.max_retries)

    def __repr__(self) -> str:
        return f"OpenAIVLMCaptioner(model_id={self.model_id!r}, base_url={self.base_url!r})"

    def caption(self, video: Path, *, objects: list[str] | None = None) -> str:
        from ..vlm.served import frame_parts

        if not isinstance(video, (str, Path)):
            raise InputError(f"caption() needs a video path, got {type(video).__name__}")
        parts = frame_parts(video, self.num_frames, self.frame_size, as_video=self.video)
        question = caption_instruction(self.num_frames, objects)
        data = self.client.chat([*parts, {"type": "text", "text": question}], max_tokens=self.max_new_tokens)
        message = data["choices"][0].get("message")
        text = message.get("content") if isinstance(message, dict) else None
        return " ".join(text.split()) if isinstance(text, str) else ""

    def locate(self, video: Path, objects: list[str], times: list[float]) -> list[list[list[float] | None]]:
        """Each object's box on the frames at ``times`` (fractions of the video), asked of the served model one
        frame at a time, as the local captioner asks (``grounding.py``). The box format goes by the model's name:
        a Qwen2.5-VL name means pixels of the image as its processor resizes it, any other the 0-1000 grid
        (Qwen3-VL, Qwen2-VL)."""
        from ..store.video_io import frames_at
        from ..vlm.served import jpeg_part
        from .grounding import PIXELS, box_format, fit_frame, instruction, match, parse_boxes, qwen_resized

        if not isinstance(video, (str, Path)):
            raise InputError(f"locate() needs a video path, got {type(video).__name__}")
        names = [str(o).strip() for o in objects]
        if not names or not all(names):
            raise InputError(f"locate() needs the objects' names, got {objects!r}")
        fmt = box_format(None, self.model_id)
        out: list[list[list[float] | None]] = []
        for arr in frames_at(video, times):
            img = fit_frame(arr, self.frame_size)
            question = instruction(list(dict.fromkeys(names)))
            data = self.client.chat([jpeg_part(img), {"type": "text", "text": question}],
                                    max_tokens=max(self.max_new_tokens, 32 * len(names) + 16))
            message = data["choices"][0].get("message")
            text = message.get("content") if isinstance(message, dict) else None
            size = qwen_resized(img.width, img.height) if fmt == PIXELS else (1000.0, 1000.0)
            out.append(match(names, parse_boxes(text if isinstance(text, str) else "", fmt, size)))
        return out
