"""Score many videos: per-video errors never stop the others, videos go through the model in
batches, and frame decoding runs in a worker thread while the model works on the previous batch.

A scorer that has ``prepare(video, prompt, rule)`` (CPU work) and ``score_prepared(list)``
(model work) gets batching and overlap; any other ``Scorer`` is called one video at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import Phyt2vError
from ..roles import Scorer, Scores


@dataclass
class ScoreItem:
    video: Path
    prompt: str
    rule: str | None = None


@dataclass
class ScoreResult:
    video: Path
    prompt: str
    scores: Scores | None = None
    error: str | None = None
    rule: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        """A flat record (path, prompt, sa, pc, scalar extras, error) for CSV/JSONL/tables."""
        out: dict[str, Any] = {"path": str(self.video), "prompt": self.prompt,
                               "sa": self.scores.sa if self.scores else None,
                               "pc": self.scores.pc if self.scores else None}
        if self.rule is not None:
            out["rule"] = self.rule
        if self.scores:
            for k, v in self.scores.extra.items():
                if isinstance(v, (str, int, float, bool)) or v is None:
                    out[k] = v
                elif isinstance(v, list):
                    out[k] = ",".join(map(str, v))
        out["error"] = self.error
        return out


def unparseable_error(scores: Scores | None) -> str | None:
    """The error of a result whose model answered without a usable rating (``extra['unparseable']`` lists what
    is missing), with the start of the answer; None when nothing is missing."""
    extra = getattr(scores, "extra", None) or {}
    missing = extra.get("unparseable")
    if not missing:
        return None
    answer = " ".join(str(extra.get("reply") or extra.get("sa_answer") or "").split())[:160]
    what = ", ".join(map(str, missing)) if isinstance(missing, list) else str(missing)
    return f"unparseable reply ({what})" + (f": {answer!r}" if answer else "")


def checked(scorer: Any, res: ScoreResult) -> ScoreResult:
    """A scorer that declares ``unparseable_is_error`` (VideoScore2): an unparseable answer is an error row."""
    if res.error is None and getattr(scorer, "unparseable_is_error", False):
        res.error = unparseable_error(res.scores)
    return res


def as_items(items: Iterable[Any]) -> list[ScoreItem]:
    out = []
    for it in items:
        if isinstance(it, ScoreItem):
            out.append(it)
        elif isinstance(it, dict):
            out.append(ScoreItem(Path(it["video"]), it["prompt"], it.get("rule")))
        else:
            out.append(ScoreItem(Path(it[0]), it[1], it[2] if len(it) > 2 else None))
    return out


def describe(err: BaseException) -> str:
    """One line for a per-video failure."""
    if isinstance(err, Phyt2vError):
        return str(err)
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}".rstrip(": ")


def _prefetch(scorer: Any, items: list[ScoreItem], out: queue.Queue, stop: threading.Event) -> None:
    for i, it in enumerate(items):
        if stop.is_set():
            break
        t0 = time.perf_counter()
        try:
            prepared: Any = scorer.prepare(it.video, it.prompt, it.rule)
        except Exception as e:  # recorded per video
            prepared = e
        while not stop.is_set():
            try:
                out.put((i, prepared, time.perf_counter() - t0), timeout=0.2)
                break
            except queue.Full:
                continue
    while True:  # the end marker; give up only when the consumer has stopped
        try:
            out.put(None, timeout=0.2)
            return
        except queue.Full:
            if stop.is_set():
                return


def score_videos(scorer: Scorer, items: Iterable[Any], *, batch_size: int = 1, prefetch: int = 2,
                 on_result: Callable[[int, ScoreResult], None] | None = None) -> list[ScoreResult]:
    """Score every item; returns results in input order. ``on_result(index, result)`` is called as
    each finishes (write and flush there, so a crash loses at most one batch)."""
    items = as_items(items)
    results: list[ScoreResult | None] = [None] * len(items)

    def emit(i: int, res: ScoreResult) -> None:
        results[i] = res = checked(scorer, res)
        if on_result is not None:
            on_result(i, res)

    if not (hasattr(scorer, "prepare") and hasattr(scorer, "score_prepared")):
        for i, it in enumerate(items):
            t0 = time.perf_counter()
            res = ScoreResult(it.video, it.prompt, rule=it.rule)
            try:
                res.scores = scorer.score(it.video, it.prompt)
            except Exception as e:
                res.error = describe(e)
            res.seconds = time.perf_counter() - t0
            emit(i, res)
        return [r for r in results if r is not None]

    batch_size = max(1, int(batch_size))
    q: queue.Queue = queue.Queue(maxsize=max(1, batch_size * max(1, prefetch)))
    stop = threading.Event()
    worker = threading.Thread(target=_prefetch, args=(scorer, items, q, stop), daemon=True, name="phyt2v-decode")
    worker.start()
    pending: list[tuple[int, Any, float]] = []
    try:
        done = False
        while not done:
            msg = q.get()
            if msg is None:
                done = True
            else:
                i, prepared, secs = msg
                if isinstance(prepared, BaseException):
                    emit(i, ScoreResult(items[i].video, items[i].prompt, error=describe(prepared),
                                        rule=items[i].rule, seconds=secs))
                else:
                    pending.append(msg)
            if pending and (len(pending) >= batch_size or done):
                _run_batch(scorer, items, pending, emit)
                pending = []
    finally:
        stop.set()
        worker.join(timeout=5)
    return [r for r in results if r is not None]


def _run_batch(scorer: Any, items: list[ScoreItem], batch: list[tuple[int, Any, float]], emit) -> None:
    """One model call for the batch; if it fails, each video alone, so one bad video fails alone."""
    t0 = time.perf_counter()
    try:
        scores = scorer.score_prepared([p for _, p, _ in batch])
    except Exception as e:
        if len(batch) > 1:
            for one in batch:
                _run_batch(scorer, items, [one], emit)
            return
        i, _, secs = batch[0]
        emit(i, ScoreResult(items[i].video, items[i].prompt, error=describe(e), rule=items[i].rule,
                            seconds=secs + time.perf_counter() - t0))
        return
    share = (time.perf_counter() - t0) / len(batch)
    for (i, _, secs), sc in zip(batch, scores):
        emit(i, ScoreResult(items[i].video, items[i].prompt, scores=sc, rule=items[i].rule, seconds=secs + share))
