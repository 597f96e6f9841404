"""The four model roles as small interfaces, and the typed values they exchange.

The loop depends only on this module: never on torch, diffusers, transformers or openai.
A backend is any object with these methods; see ``registry.py`` for how they are found by name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
StepCallback = Callable[[int, int], None]  # (step done, total steps)


@runtime_checkable
class LLM(Protocol):
    """A chat model. ``schema`` is a JSON schema the reply must follow, when the backend can
    constrain its output (``supports_schema``); otherwise it is ignored and the caller parses.
    Optional: a reply that is a ``str`` subclass with ``finish_reason`` ("length" when cut at max_tokens;
    see :class:`Reply`), or a ``last_finish_reason`` attribute; a plain ``str`` still works."""

    backend: str
    model_id: str
    supports_schema: bool

    def complete(self, messages: list[Message], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> str: ...


class Reply(str):
    """A backend's reply: the text, plus why generation stopped in ``finish_reason``: ``"stop"``,
    ``"length"`` (cut at max_tokens) or None when the backend cannot tell. A plain ``str`` from a
    third-party backend is read as ``finish_reason`` None."""

    finish_reason: str | None

    def __new__(cls, text: str | None, finish_reason: str | None = None) -> "Reply":
        obj = super().__new__(cls, text or "")
        obj.finish_reason = finish_reason
        return obj


def finish_reason(reply: Any, llm: Any = None) -> str | None:
    """Why a reply stopped: ``reply.finish_reason`` (a ``Reply``), else the backend's
    ``last_finish_reason`` attribute, else None (unknown: accepted as before)."""
    reason = getattr(reply, "finish_reason", None)
    if reason is None and llm is not None:
        reason = getattr(llm, "last_finish_reason", None)
    return reason if isinstance(reason, str) else None


@dataclass
class GeneratedVideo:
    path: Path
    num_frames: int
    fps: int
    width: int
    height: int
    seed: int
    prompt_tokens: int
    truncated: bool = False
    family: str | None = None
    steps: int | None = None
    guidance: float | None = None
    token_counts: dict[str, int] = field(default_factory=dict)  # per text encoder, as the pipeline encodes
    knobs: dict[str, Any] = field(default_factory=dict)  # speed/memory knobs that were on
    audio: dict[str, Any] | None = None  # the muxed audio stream (LTX-2): codec, sample_rate, channels, seconds


def video_info(video: Any, root: Path | None = None) -> dict[str, Any] | None:
    """A :class:`GeneratedVideo` as plain data for the round record (path relative to ``root``)."""
    if not is_dataclass(video) or isinstance(video, type):
        return None
    data = asdict(video)
    path = Path(data.pop("path"))
    if root is not None and path.is_absolute() and path.is_relative_to(root):
        path = path.relative_to(root)
    return {"path": str(path), **data}


@runtime_checkable
class VideoGenerator(Protocol):
    backend: str
    model_id: str
    max_prompt_tokens: int  # the text encoder's token budget, read from the loaded pipeline

    def count_tokens(self, prompt: str) -> int: ...

    def generate(self, prompt: str, *, seed: int, out_path: Path,
                 on_step: StepCallback | None = None) -> GeneratedVideo: ...

    # Optional (the diffusers backends have both; the loop asks with ``supports_many``):
    #   generate(..., overrides={"steps", "height", "width", "cache"})  one call's settings (draft rounds)
    #   generate_many(prompt, *, seeds, out_paths, on_step, overrides, batch_size) -> list[GeneratedVideo]
    #       several seeds in one pipeline call (best-of-N), halved on CUDA out-of-memory


@runtime_checkable
class Captioner(Protocol):
    backend: str
    model_id: str

    def caption(self, video: Path, *, objects: list[str] | None = None) -> str: ...


@dataclass
class Scores:
    """SA (semantic adherence to the user's original prompt) and PC (physical commonsense),
    both in [0, 1]. ``extra`` holds backend-specific values (raw logits, a rule score, ...)."""

    sa: float
    pc: float
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    backend: str
    model_id: str

    def score(self, video: Path, prompt: str) -> Scores: ...
