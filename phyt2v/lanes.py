"""Where each step of a run executes: the lanes of a pipelined batch.

A lane is one worker thread that runs the jobs given to it one at a time, in the order they arrive. With
several prompts in flight (``phyt2v batch --concurrency K``), every GPU step of every prompt (load, generate,
caption, score) runs on the one ``gpu`` lane, so the models never run two at once; a local LLM gets its own
serial ``llm`` lane (the ``gpu`` lane itself when it shares the GPU); a remote LLM has no lane: each prompt's
thread calls it, so K requests are in flight together and their latency overlaps the GPU work.

Without a pipeline (``refine``, ``batch`` at concurrency 1) every lane is inline: the caller's own thread.
A job given to the lane it already runs on runs at once (a step that loads a model on its own lane).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_here = threading.local()


class Lane:
    """One worker thread; ``call`` runs a job there and returns its result (or raises its error)."""

    def __init__(self, name: str):
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"phyt2v-{name}")
        self._lock = threading.Lock()
        self.spans: list[tuple[float, float]] = []  # (start, end) of each job, perf_counter seconds

    def call(self, fn: Callable[[], T]) -> T:
        if getattr(_here, "lane", None) is self:
            return fn()
        return self._pool.submit(self._job, fn).result()

    def _job(self, fn: Callable[[], T]) -> T:
        _here.lane = self
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            with self._lock:
                self.spans.append((t0, time.perf_counter()))

    @property
    def jobs(self) -> int:
        return len(self.spans)

    def busy_fraction(self, until: float | None = None) -> float | None:
        """Busy time over the span from its first job's start to its last job's end (or to ``until``)."""
        if not self.spans:
            return None
        start = self.spans[0][0]
        end = self.spans[-1][1] if until is None else until
        if end <= start:
            return None
        busy = sum(max(0.0, min(b, end) - a) for a, b in self.spans if a < end)
        return busy / (end - start)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class Lanes:
    """The lane of each kind of step; ``None`` runs it inline in the caller's thread."""

    gpu: Lane | None = None
    llm: Lane | None = None
    owned: list[Lane] = field(default_factory=list)

    def call(self, kind: str, fn: Callable[[], T]) -> T:
        lane = self.gpu if kind == "gpu" else self.llm
        return fn() if lane is None else lane.call(fn)

    def close(self) -> None:
        for lane in self.owned:
            lane.close()


def llm_lane_kind(plan_llm: dict[str, Any], llm_device: str, gpu_in_use: bool) -> str:
    """``none`` (a remote LLM: concurrent calls), ``gpu`` (a local LLM on the GPU: shares the GPU lane) or
    ``own`` (a local LLM on the CPU: its own serial lane)."""
    if plan_llm.get("backend") == "openai":
        return "none"
    if not gpu_in_use or llm_device == "cpu" or plan_llm.get("backend") == "embedded":
        return "own"
    return "gpu"


def pipeline_lanes(kind: str) -> Lanes:
    gpu = Lane("gpu")
    if kind == "none":
        return Lanes(gpu, None, [gpu])
    if kind == "gpu":
        return Lanes(gpu, gpu, [gpu])
    llm = Lane("llm")
    return Lanes(gpu, llm, [gpu, llm])
