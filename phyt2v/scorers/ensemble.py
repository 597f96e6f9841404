"""A verifier ensemble: several scorers on each video, their SA and PC kept side by side.

Built from ``scorer`` given as a list (``config/ensemble.py``), each member through the registry like any scorer
(loaded once). ``score`` runs every member on the video (each video file decoded once per frame size:
``store.video_io.shared_reads``) and returns the weighted means of their SA and PC, with every member's own values
in ``extra["scorers"]``. By linearity the loop's score of these means is the weighted mean of each member's score;
the loop's best-of-N choice may rank the members instead (``loop.combine: rank``, ``loop/ensemble.py``).
A member without a usable value (an unparseable reply: NaN) makes the combined SA and PC NaN, with
``extra["unparseable"]`` naming the member: a failed step in the loop, an error row in ``phyt2v score``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import Phyt2vError
from ..roles import Scores
from ..store.video_io import shared_reads
from .many import ScoreItem, ScoreResult, as_items, score_videos, unparseable_error

if TYPE_CHECKING:
    from ..config import Config

SCALARS = (str, int, float, bool, type(None))


class EnsembleScorer:
    backend = "ensemble"
    quantization_path = None  # each member takes its own quantization

    def __init__(self, members: dict[str, Any], weights: dict[str, float]):
        if len(members) < 2 or set(members) != set(weights):
            raise ValueError("an ensemble needs two or more members, each with a weight")
        self.members = dict(members)  # label -> scorer; the swap placement may replace each by its wrapped copy
        self.weights = {k: float(w) for k, w in weights.items()}
        self.model_id = " + ".join(f"{label}:{getattr(m, 'model_id', '?')}" for label, m in self.members.items())
        quant = [f"{label}:{q}" for label, m in self.members.items()
                 if (q := getattr(m, "quantization", None) or "none") != "none"]
        self.quantization = ",".join(quant) or "none"  # run.json's scorer_quantized: any member quantized

    @classmethod
    def from_config(cls, config: "Config", build: Callable[[str, "Config"], Any] | None = None) -> "EnsembleScorer":
        """Each member built by ``build(label, member config)`` (default: ``registry.build``, loaded once)."""
        from .. import registry
        from ..config.ensemble import member_config, members

        build = build or (lambda label, cfg: registry.build("scorer", cfg))
        parts = members(config.scorer)
        return cls({label: build(label, member_config(config, m)) for label, m in parts},
                   {label: m.weight for label, m in parts})

    @classmethod
    def check_before_load(cls, config: "Config") -> None:
        """Each member's backend name (did-you-mean on a typo) and its own checks, before anything loads."""
        from .. import registry
        from ..config.ensemble import member_config, members

        for _, m in members(config.scorer):
            registry.check("scorer", m.backend)
            registry.check_before_load("scorer", member_config(config, m))

    # ------------------------------------------------------------------ one video

    def score(self, video: Path, prompt: str) -> Scores:
        results: dict[str, Scores] = {}
        with shared_reads():
            for label, member in self.members.items():
                try:
                    results[label] = member.score(video, prompt)
                except Phyt2vError as e:  # named by the member; a VideoError stays a VideoError
                    raise _named(e, label) from e
        return self.combine(results)

    def combine(self, results: dict[str, Scores | None], errors: dict[str, str] | None = None) -> Scores:
        """The weighted means of the members' SA and PC (NaN when any member has none), every member's values in
        ``extra["scorers"]`` (its scalar extras included), ``extra["unparseable"]`` naming the members without."""
        errors = dict(errors or {})
        table: dict[str, dict[str, Any]] = {}
        for label in self.members:
            s = results.get(label)
            row: dict[str, Any] = {"weight": self.weights[label]}
            if s is not None:
                row.update({"sa": _num(s.sa), "pc": _num(s.pc)})
                row.update({k: v for k, v in (s.extra or {}).items() if isinstance(v, SCALARS) or _flat_list(v)})
                if label not in errors and (row["sa"] is None or row["pc"] is None):
                    errors[label] = unparseable_error(s) or "no usable SA/PC"
            if label in errors:
                row["error"] = errors[label]
            table[label] = row
        total = sum(self.weights.values())
        usable = not errors
        sa = sum(self.weights[k] * table[k]["sa"] for k in table) / total if usable else math.nan
        pc = sum(self.weights[k] * table[k]["pc"] for k in table) / total if usable else math.nan
        extra: dict[str, Any] = {"scorers": table}
        if errors:
            extra["unparseable"] = [f"{label}: {msg}" for label, msg in errors.items()]
        return Scores(sa=sa, pc=pc, extra=extra)

    # ------------------------------------------------------------------ many videos, one pass

    def score_many(self, items: Iterable[Any], *, batch_size: int = 1, prefetch: int = 2,
                   on_result: Callable[[int, ScoreResult], None] | None = None) -> list[ScoreResult]:
        """Every member on each chunk of ``batch_size`` videos, each video file decoded once per frame size for all
        the members; a member's failure on a video is that video's error (the other members' values are kept)."""
        items = as_items(items)
        out: list[ScoreResult] = []
        size = max(1, int(batch_size))
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            t0 = time.perf_counter()
            with shared_reads():
                per = {label: score_videos(m, chunk, batch_size=size, prefetch=prefetch)
                       for label, m in self.members.items()}
            share = (time.perf_counter() - t0) / len(chunk)
            for j, it in enumerate(chunk):
                res = self.merge(it, {label: rows[j] for label, rows in per.items()}, share)
                out.append(res)
                if on_result is not None:
                    on_result(start + j, res)
        return out

    def merge(self, item: ScoreItem, rows: dict[str, ScoreResult], seconds: float = 0.0) -> ScoreResult:
        errors = {label: r.error for label, r in rows.items() if r.error}
        scores = self.combine({label: r.scores for label, r in rows.items()}, errors)
        msg = "; ".join(scores.extra.get("unparseable", [])) or None
        return ScoreResult(item.video, item.prompt, scores=scores, error=msg, rule=item.rule, seconds=seconds)


def _named(err: Phyt2vError, label: str) -> Phyt2vError:
    try:
        return type(err)(f"scorer {label}: {err}")
    except TypeError:  # an error type with other constructor arguments keeps its own message
        return err


def _num(v: Any) -> float | None:
    return None if not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)) else float(v)


def _flat_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, SCALARS) for x in v)
