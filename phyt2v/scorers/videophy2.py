"""VideoPhy-2 AutoEval: SA and PC rated 1-5 (and the rule task 0/1/2) by greedy generation.

Weights: ``videophysics/videophy_2_auto`` (MIT, sharded), mPLUG-Owl-Video on LLaMA-7B, run
natively. The rating is the first number the reference's parser finds in the answer; an answer
with none is recorded as unparseable (``sa``/``pc`` NaN, ``extra['unparseable']``), never as 0.
``Scores.sa``/``pc`` are the ratings mapped to [0, 1] by (r - 1) / 4; the ratings themselves are
``extra['sa_rating']`` / ``extra['pc_rating']``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..config import check_options
from ..roles import Scores

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_MODEL = "videophysics/videophy_2_auto"
MAX_LENGTH = 256  # the reference's generate(max_length=256): up to 256 new tokens
PREFIX = ("The following is a conversation between a curious human and an AI assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.\n"
          "Human: <|video|>\n")
SA_TEMPLATE = PREFIX + ("Human: Does this video match the description: \"{caption}\"? Please rate the video on a "
                        "scale from 1 to 5, where 5 indicates a perfect match and 1 indicates no relevance.\nAI: ")
PC_TEMPLATE = PREFIX + ("Human: Does this video adhere to the physical laws? Rate the video on a scale from 1 to 5, "
                        "where 5 means full compliance and 1 means significant violations.\nAI: ")
RULE_TEMPLATE = PREFIX + ("Human: Does the video follow the physical rule: \"{rule}\"?\n"
                          "Choose 0 if not, 1 if valid, or 2 if indeterminate. \nAI: ")
# The reference's parser: the first key of this table (in this order) found anywhere in the answer.
NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
           "0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}


def parse_rating(text: str) -> int | None:
    """The number the reference reads from an answer, or None when there is none."""
    low = text.lower().strip()
    for key, value in NUMBERS.items():
        if key in low:
            return value
    return None


def _unit(rating: int | None) -> float:
    return math.nan if rating is None else min(1.0, max(0.0, (rating - 1) / 4))


class VideoPhy2Scorer:
    backend = "videophy2"
    default_model = DEFAULT_MODEL
    quantization_path = "torchao"  # runtime/quant.py: quantized in place, layer by layer onto the GPU

    @staticmethod
    def count_params(config: dict[str, Any] | None) -> int:
        """Parameters of the model a ``config.json`` describes, built on the meta device (the memory plan asks)."""
        from .mplug_owl.model import count_params

        return count_params(config)

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 1, num_frames: int = 32, max_new_tokens: int = MAX_LENGTH,
                 quantization: str = "none"):
        from .mplug_owl.runtime import OwlRuntime

        self.model_id = model
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.runtime = OwlRuntime(model, device=device, dtype=dtype, num_frames=num_frames, quantization=quantization)
        self.quantization = self.runtime.quantization  # what was applied (run.json's scorer_quantized)

    @classmethod
    def from_config(cls, config: "Config") -> "VideoPhy2Scorer":
        from ..config.ensemble import scorer_model

        s = config.scorer
        check_options("scorer", "videophy2", s.options, ("max_new_tokens",))
        return cls(model=scorer_model(config, s, DEFAULT_MODEL), device=s.device, dtype=s.dtype,
                   batch_size=s.batch_size,
                   num_frames=s.num_frames or 32, max_new_tokens=int(s.options.get("max_new_tokens", MAX_LENGTH)),
                   quantization=s.quantization)

    def token_ids(self, prompt: str, rule: str | None = None) -> dict[str, list[int]]:
        from .mplug_owl.processor import check_caption, tokenize

        check_caption(prompt)
        texts = {"sa": SA_TEMPLATE.format(caption=prompt), "pc": PC_TEMPLATE}
        if rule is not None:
            texts["rule"] = RULE_TEMPLATE.format(rule=check_caption(rule, "rule"))
        tok, media = self.runtime.tokenizer, self.runtime.config.media_length
        return {task: tokenize(tok, text, split_turns=False, media_length=media) for task, text in texts.items()}

    def prepare(self, video: Path, prompt: str, rule: str | None = None):
        ids = self.token_ids(prompt, rule)
        for seq in ids.values():
            self.runtime.check_length(seq, Path(video))
        item = self.runtime.prepare_video(Path(video), prompt)
        item.ids = ids
        return item

    def score_prepared(self, items: list) -> list[Scores]:
        """One vision pass per video, then every task of every video generated in one batch."""
        import torch

        if not items:
            return []
        media = self.runtime.encode(items)
        tok = self.runtime.tokenizer
        rows, row_media, keys = [], [], []
        for i, it in enumerate(items):
            for task, seq in it.ids.items():
                rows.append(seq)
                row_media.append(media[i])
                keys.append((i, task))
        width = max(len(r) for r in rows)
        pad = max(tok.pad_id, 0)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        new = self.runtime.model.generate(ids, mask, torch.stack(row_media), max_new_tokens=self.max_new_tokens,
                                          eos_token_id=tok.eos_id, pad_token_id=pad)
        answers: list[dict[str, str]] = [{} for _ in items]
        for (i, task), seq in zip(keys, new.tolist()):
            if tok.eos_id in seq:
                seq = seq[: seq.index(tok.eos_id)]
            answers[i][task] = tok.decode(seq)
        return [self._scores(it, ans) for it, ans in zip(items, answers)]

    @staticmethod
    def _scores(item, answers: dict[str, str]) -> Scores:
        ratings = {task: parse_rating(text) for task, text in answers.items()}
        extra: dict[str, Any] = {"sa_rating": ratings["sa"], "pc_rating": ratings["pc"],
                                 "sa_answer": answers["sa"], "pc_answer": answers["pc"],
                                 "unparseable": [t for t, r in ratings.items() if r is None],
                                 "video_frames": item.num_frames}
        if "rule" in answers:
            extra["rule_rating"], extra["rule_answer"] = ratings["rule"], answers["rule"]
        return Scores(sa=_unit(ratings["sa"]), pc=_unit(ratings["pc"]), extra=extra)

    def score(self, video: Path, prompt: str, rule: str | None = None) -> Scores:
        return self.score_prepared([self.prepare(video, prompt, rule)])[0]

    def score_many(self, items: Iterable[Any], **kwargs) -> list:
        from .many import score_videos

        return score_videos(self, items, batch_size=kwargs.pop("batch_size", self.batch_size), **kwargs)
