"""VideoCon-Physics (VideoPhy, ICLR 2025): SA and PC as P(Yes) / (P(Yes) + P(No)).

Weights: ``videophysics/videocon_physics`` (MIT), mPLUG-Owl-Video on LLaMA-7B, run natively.
The reference cut every prompt at 257 tokens (its data loader's ``max_length=256``), which scores
long captions at the wrong position; we do not cut unless ``reference_truncation=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..config import check_options
from ..roles import Scores

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_MODEL = "videophysics/videocon_physics"
REFERENCE_MAX_LENGTH = 256  # the reference keeps max_length + 1 = 257 ids
PREFIX = ("The following is a conversation between a curious human and AI assistant. The assistant gives "
          "helpful, detailed, and polite answers to the user's questions.")
SA_TEMPLATE = PREFIX + "\nHuman: <|video|>\nHuman: Does this video entail the description: \"{caption}\"?\nAI: "
PC_TEMPLATE = PREFIX + "\nHuman: <|video|>\nHuman: Does this video follow the physical laws?\nAI: "


def yes_no_probability(logits, yes_id: int, no_id: int):
    """softmax[Yes] / (softmax[Yes] + softmax[No]) over the vocabulary, computed stably as
    sigmoid(l_Yes - l_No) in float32. ``logits``: (..., vocab)."""
    import torch

    logits = logits.float()
    return torch.sigmoid(logits[..., yes_id] - logits[..., no_id])


class VideoConScorer:
    backend = "videocon"
    default_model = DEFAULT_MODEL
    quantization_path = "torchao"  # runtime/quant.py: quantized in place, layer by layer onto the GPU

    @staticmethod
    def count_params(config: dict[str, Any] | None) -> int:
        """Parameters of the model a ``config.json`` describes, built on the meta device (the memory plan asks)."""
        from .mplug_owl.model import count_params

        return count_params(config)

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 1, reference_truncation: bool = False, num_frames: int = 32,
                 quantization: str = "none"):
        from .mplug_owl.runtime import OwlRuntime

        self.model_id = model
        self.batch_size = max(1, int(batch_size))
        self.reference_truncation = bool(reference_truncation)
        self.runtime = OwlRuntime(model, device=device, dtype=dtype, num_frames=num_frames,
                                  quantization=quantization)
        self.quantization = self.runtime.quantization  # what was applied (run.json's scorer_quantized)
        tok = self.runtime.tokenizer
        self.yes_id, self.no_id = tok.first_id("Yes"), tok.first_id("No")

    @classmethod
    def from_config(cls, config: "Config") -> "VideoConScorer":
        from ..config.ensemble import scorer_model

        s = config.scorer
        check_options("scorer", "videocon", s.options)
        return cls(model=scorer_model(config, s, DEFAULT_MODEL), device=s.device, dtype=s.dtype,
                   batch_size=s.batch_size,
                   reference_truncation=s.reference_truncation, num_frames=s.num_frames or 32,
                   quantization=s.quantization)

    # ------------------------------------------------------------------ two phases (see scoring.py)

    def token_ids(self, prompt: str) -> dict[str, list[int]]:
        from .mplug_owl.processor import check_caption, tokenize

        check_caption(prompt)
        cut = REFERENCE_MAX_LENGTH if self.reference_truncation else None
        tok, media = self.runtime.tokenizer, self.runtime.config.media_length
        return {task: tokenize(tok, text, split_turns=True, media_length=media, max_length=cut)
                for task, text in (("sa", SA_TEMPLATE.format(caption=prompt)), ("pc", PC_TEMPLATE))}

    def prepare(self, video: Path, prompt: str, rule: str | None = None):
        """Decode frames and tokenise (CPU only; safe to run in a worker thread)."""
        ids = self.token_ids(prompt)
        for seq in ids.values():
            self.runtime.check_length(seq, Path(video))
        item = self.runtime.prepare_video(Path(video), prompt)
        item.ids = ids
        full = len(self.token_ids_untruncated(prompt)) if self.reference_truncation else len(ids["sa"])
        item.meta["truncated"] = full > len(ids["sa"])
        return item

    def token_ids_untruncated(self, prompt: str) -> list[int]:
        from .mplug_owl.processor import tokenize

        return tokenize(self.runtime.tokenizer, SA_TEMPLATE.format(caption=prompt), split_turns=True,
                        media_length=self.runtime.config.media_length)

    def score_prepared(self, items: list) -> list[Scores]:
        """One vision pass per video, then SA and PC rows in one LLM pass."""
        import torch

        if not items:
            return []
        media = self.runtime.encode(items)
        rows, row_media = [], []
        for task in ("sa", "pc"):
            for i, it in enumerate(items):
                rows.append(it.ids[task])
                row_media.append(media[i])
        width = max(len(r) for r in rows)
        pad = self.runtime.tokenizer.eos_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
        positions = [len(r) - 1 for r in rows]  # the last real position
        logits = self.runtime.model.logits_at(ids, torch.stack(row_media), positions)
        probs = yes_no_probability(logits, self.yes_id, self.no_id).tolist()
        n = len(items)
        out = []
        for i, it in enumerate(items):
            sa, pc = probs[i], probs[n + i]
            out.append(Scores(sa=sa, pc=pc, extra={
                "sa_pass": sa >= 0.5, "pc_pass": pc >= 0.5,
                "sa_logit_yes": float(logits[i, self.yes_id]), "sa_logit_no": float(logits[i, self.no_id]),
                "pc_logit_yes": float(logits[n + i, self.yes_id]), "pc_logit_no": float(logits[n + i, self.no_id]),
                "sa_position": positions[i], "pc_position": positions[n + i],
                "truncated": bool(it.meta.get("truncated")), "video_frames": it.num_frames}))
        return out

    # ------------------------------------------------------------------ the Scorer interface

    def score(self, video: Path, prompt: str) -> Scores:
        return self.score_prepared([self.prepare(video, prompt)])[0]

    def score_many(self, items: Iterable[Any], **kwargs) -> list:
        """Score many (video, prompt) pairs; see ``phyt2v.scorers.many.score_videos``."""
        from .many import score_videos

        return score_videos(self, items, batch_size=kwargs.pop("batch_size", self.batch_size), **kwargs)
