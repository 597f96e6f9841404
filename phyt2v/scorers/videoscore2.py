"""VideoScore2 (TIGER-Lab, arXiv 2509.22799): a Qwen2.5-VL-7B fine-tune that rates a generated video 1..5 on
visual quality, text-to-video alignment and physical/common-sense consistency, after reasoning about it.

Run natively through transformers' Qwen2.5-VL classes and the captioner's frame path (``vlm/``). As the model card
does: the card's query (``vs2_reply.TEMPLATE``), the video sampled at 2 frames per second (qwen-vl-utils' rules:
at least 4 frames, an even count, each frame 128..768 x 28 x 28 pixels), up to 1024 new tokens sampled at
temperature 0.7 (with a fixed seed here, so a rerun reads the same), the ratings read by the card's pattern and
their soft scores from the generation's logits.

``Scores.sa`` is text-to-video alignment, ``Scores.pc`` physical/common-sense consistency, each the card's soft score
mapped from its 1..5 scale to [0, 1] by (s - 1) / 4 (clipped at 0); ``extra`` holds visual quality (``visual``, the
same mapping), the integer ratings, the soft scores and the model's rationale. A reply without the three ratings is
unparseable: ``sa``/``pc`` NaN and ``extra['unparseable']`` (an error row in ``phyt2v score``, a failed step in the
loop), never a zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import InputError
from ..roles import Scores
from . import vs2_reply as reply

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_MODEL = "TIGER-Lab/VideoScore2"
INFER_FPS = 2.0
MAX_NEW_TOKENS = 1024
TEMPERATURE = 0.7
OPTIONS = ("fps", "max_new_tokens", "temperature", "seed", "score")


@dataclass
class Prepared:
    """CPU-side work for one video and prompt (frames sampled, the chat inputs built)."""

    video: Path
    prompt: str
    inputs: dict[str, Any]
    frames: int
    sample_fps: float
    meta: dict[str, Any] = field(default_factory=dict)


class VideoScore2Scorer:
    backend = "videoscore2"
    default_model = DEFAULT_MODEL
    quantization_path = "transformers"
    unparseable_is_error = True  # phyt2v score: a reply without the three ratings is an error row (many.py)
    # working memory for the memory plan: a 6-s video at 2 fps is 12 frames (~2.7k vision tokens at 480x720), up to
    # 1024 new tokens with their per-step logits (152k x 4 bytes each); the captioner's VLM budget, plus the logits
    work_bytes = int(1.5 * 2**30) + MAX_NEW_TOKENS * 152_064 * 4

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto",
                 quantization: str = "none", num_frames: int | None = None, frame_size: int | None = None,
                 fps: float = INFER_FPS, max_new_tokens: int = MAX_NEW_TOKENS, temperature: float = TEMPERATURE,
                 seed: int = 0, score: str = "soft"):
        from ..vlm.runtime import get_vlm

        if score not in ("soft", "hard"):
            raise InputError(f"videoscore2: options.score must be soft (the card's) or hard, not {score!r}")
        if not fps > 0 or max_new_tokens < 1 or temperature < 0:
            raise InputError(f"videoscore2: fps ({fps}) must be > 0, max_new_tokens ({max_new_tokens}) >= 1 and "
                             f"temperature ({temperature}) >= 0 (0: greedy)")
        self.model_id = model
        self.num_frames, self.frame_size, self.fps = num_frames, frame_size, float(fps)
        self.max_new_tokens, self.temperature = int(max_new_tokens), float(temperature)
        self.seed, self.score_kind = int(seed), score
        self.model, self.processor = get_vlm(resolve_model(model), device, dtype, quantization, role="scorer")
        self.quantization = quantization  # get_vlm applied it or raised (run.json's scorer_quantized)
        from ..vlm.runtime import tokenizer_of

        self.tokenizer = tokenizer_of(self.processor)

    @classmethod
    def from_config(cls, config: "Config") -> "VideoScore2Scorer":
        from ..config import check_options
        from ..config.ensemble import scorer_model

        s = config.scorer
        opts = check_options("scorer", "videoscore2", s.options, OPTIONS)
        # frame_size only when set: by default frames keep the card's pixel range (up to 768 x 28 x 28)
        return cls(scorer_model(config, s, DEFAULT_MODEL), device=s.device, dtype=s.dtype, quantization=s.quantization,
                   num_frames=s.num_frames, frame_size=s.frame_size if "frame_size" in s.model_fields_set else None,
                   fps=float(opts.get("fps", INFER_FPS)),
                   max_new_tokens=int(opts.get("max_new_tokens", MAX_NEW_TOKENS)),
                   temperature=float(opts.get("temperature", TEMPERATURE)), seed=int(opts.get("seed", 0)),
                   score=str(opts.get("score", "soft")))

    # ------------------------------------------------------------------ two phases (see many.py)

    def prepare(self, video: Path, prompt: str, rule: str | None = None) -> Prepared:
        """Sample the frames and build the chat inputs (CPU only; safe in a worker thread)."""
        from ..vlm.runtime import build_inputs
        from ..vlm.video import frames_at_fps, video_inputs

        if not prompt or not prompt.strip():
            raise InputError("videoscore2: empty prompt; pass the user's original prompt (text-to-video alignment)")
        frames, sample_fps = frames_at_fps(video, self.fps, num_frames=self.num_frames, frame_size=self.frame_size)
        text = reply.query(prompt.strip())
        inputs = video_inputs(self.model, self.processor, frames, text, sample_fps)
        as_images = inputs is None
        if as_images:  # no video processor (no torchvision): the frames as images
            inputs = build_inputs(self.model, self.processor, frames, text)
        return Prepared(Path(video), prompt, inputs, len(frames), sample_fps, {"frames_as_images": as_images})

    def score_prepared(self, items: list[Prepared]) -> list[Scores]:
        """One generation per video (the vision inputs of several videos are not padded together)."""
        return [self._score_one(it) for it in items]

    def generate(self, inputs: dict[str, Any]) -> tuple[list[int], list[Any], str]:
        """(reply token ids, per-step scores, reply text) for chat inputs; sampled as the card (temperature, seeded)
        or greedy at temperature 0. The scores are the generation's (``output_scores``), as the card reads them."""
        import torch

        from ..vlm.runtime import LOCK

        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "output_scores": True,
                              "return_dict_in_generate": True}
        sampled = self.temperature > 0
        kw.update({"do_sample": True, "temperature": self.temperature} if sampled else {"do_sample": False})
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with LOCK, torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            out = self.model.generate(**inputs, **kw)
        start = inputs["input_ids"].shape[1]
        ids = out.sequences[0, start:].tolist()
        steps = [s[0] for s in out.scores]
        text = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return ids, steps, text

    def _score_one(self, it: Prepared) -> Scores:
        ids, steps, text = self.generate(it.inputs)
        r = reply.read_reply(text, ids, steps, self.tokenizer)
        return scores_of(r, text, kind=self.score_kind, sampled_frames=it.frames, sample_fps=round(it.sample_fps, 4),
                         **it.meta)

    # ------------------------------------------------------------------ the Scorer interface

    def score(self, video: Path, prompt: str) -> Scores:
        return self.score_prepared([self.prepare(video, prompt)])[0]

    def score_many(self, items: Iterable[Any], **kwargs) -> list:
        from .many import score_videos

        kwargs.pop("batch_size", None)
        return score_videos(self, items, batch_size=1, **kwargs)


def resolve_model(model: str) -> str:
    """'tiny' -> the tiny Qwen2.5-VL that answers in the card's format; else as the shared VLM resolves it."""
    if model == "tiny":
        from ..tiny import tiny_model_dir

        return str(tiny_model_dir("qwen2.5-vl"))
    return model


def scores_of(r: reply.Reading, text: str, *, kind: str = "soft", **meta: Any) -> Scores:
    """A reading as Scores: SA = text-to-video alignment, PC = physical/common-sense consistency (soft scores, or
    the integer ratings with ``kind='hard'``; a soft score the logits cannot give falls back to the rating)."""
    value = {k: (r.soft.get(k) if kind == "soft" and r.soft.get(k) is not None else r.ratings[k]) for k in reply.LABELS}
    if r.unparseable:  # no rating: no score at all (the card's pattern needs all three)
        value = {k: None for k in reply.LABELS}
    extra: dict[str, Any] = {"visual": reply.unit(value["visual"]),
                             **{f"{k}_rating": r.ratings[k] for k in reply.LABELS},
                             **{f"{k}_soft": r.soft.get(k) for k in reply.LABELS},
                             "unparseable": list(r.unparseable), "rationale": r.rationale, "reply": text,
                             "score_kind": kind, **meta}
    return Scores(sa=reply.unit(value["sa"]), pc=reply.unit(value["pc"]), extra=extra)
