"""Where each step of a run executes: the lanes of a pipelined batch.

A lane is one worker thread that runs the jobs given to it one at a time, in the order they arrive. With
several prompts in flight (``phyt2v batch --concurrency K``), every GPU step of every prompt (load, generate,
caption, score) runs on the one ``gpu`` lane, so the models never run two at once; a local LLM gets its own
serial ``llm`` lane (the ``gpu`` lane itself when it shares the GPU); a remote LLM has no lane: each prompt's
thread calls it, so K requests are in flight together and their latency overlaps the GPU work.

Without a pipeline (``refine``, ``batch`` at concurrency 1) every lane is inline: the caller's own thread.
A job given to the lane it already runs on runs at once (a step that loads a model on its own lane).

Stopping: once ``should_stop()`` is true, no job starts: a job still waiting in a lane's queue, or given to a lane
(or run inline) after the stop, raises ``Interrupted`` in its caller instead of running; the job in progress
finishes. ``close(wait=False)`` (a second Ctrl-C) fails the waiting jobs at once and does not wait for the one in
progress (its lane thread is a daemon: the process may end under it).

A served generator (``generator.backend`` openai or veo: the video renders on a server) is not a GPU worker: its
steps (``kind`` "generator": its load and its renders) go through a ``Gate``, run in the caller's own thread, up to
``generator.max_in_flight`` at once, and never take ``GPU_LOCK``; with a local generator the "generator" kind is the
``gpu`` lane.

Every GPU step of the process (``kind`` "gpu": load, generate, caption, score) holds ``GPU_LOCK`` while it runs,
whichever Refiner and lane it comes from: two Refiners in one process share their loaded backends through the
registry's cache, and a diffusers pipeline is not thread-safe (two generates on one pipeline at once fail).

torch keeps the current CUDA device per thread: a lane's thread takes the device current in the thread that made
the lane (the main thread, pinned to its GPU under ``accelerate launch``), so 'auto' resolves to the same GPU there.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ..errors import Interrupted
from .devices import cuda_index, use_cuda_index

T = TypeVar("T")
_here = threading.local()
GPU_LOCK = threading.RLock()  # one GPU step at a time in this process
StopCheck = Callable[[], bool]


def _never() -> bool:
    return False


def not_started(name: str) -> Interrupted:
    return Interrupted(f"stopped before the next {name} step started; finished steps are saved. Run the same "
                       "command again to resume.")


class Lane:
    """One worker thread; ``call`` runs a job there and returns its result (or raises its error).

    Waiting jobs run lowest ``priority`` first (then in arrival order). A pipelined batch gives each run
    its start order as priority, so the oldest prompt in flight finishes its GPU steps (generate, caption,
    score) back to back and goes to the LLM while the next one uses the GPU; first-come order would instead
    interleave the prompts' steps, finish their GPU work together and leave the GPU idle while they all
    wait on the LLM at once."""

    def __init__(self, name: str, device: int | None = None, should_stop: StopCheck | None = None):
        self.name = name
        self.device = device  # the CUDA device index its thread works on (None: no CUDA, or the default)
        self.should_stop = should_stop or _never  # true: no job starts any more
        self.spans: list[tuple[float, float]] = []  # (start, end) of each job, perf_counter seconds
        self._heap: list[tuple[float, int, Callable[[], Any], Future]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"phyt2v-{name}", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], T], priority: float = 0) -> T:
        if self.should_stop():
            raise not_started(self.name)
        if getattr(_here, "lane", None) is self:
            return fn()
        fut: Future = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError(f"the {self.name} lane is closed")
            heapq.heappush(self._heap, (priority, next(self._order), fn, fut))
            self._cv.notify()
        return fut.result()

    def _serve(self) -> None:
        _here.lane = self
        broken: BaseException | None = None
        try:
            use_cuda_index(self.device)
        except Exception as e:  # noqa: BLE001  (every job gets it: a lane that cannot take its device runs nothing)
            broken = e
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if not self._heap:
                    return
                _, _, fn, fut = heapq.heappop(self._heap)
            if not fut.set_running_or_notify_cancel():
                continue
            if self.should_stop():  # queued before the stop: it does not start
                fut.set_exception(not_started(self.name))
                continue
            if broken is not None:
                fut.set_exception(broken)
                continue
            t0 = time.perf_counter()
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001  (handed to the caller, who re-raises it)
                fut.set_exception(e)
            finally:
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

    def close(self, wait: bool = True) -> None:
        """No more jobs; wait for the queued ones and the one in progress, or (``wait=False``) fail the queued
        ones with Interrupted and leave the one in progress to finish on its own."""
        with self._cv:
            self._closed = True
            dropped = [] if wait else [fut for *_, fut in self._heap]
            if not wait:
                self._heap.clear()
            self._cv.notify()
        for fut in dropped:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(not_started(self.name))
        if wait:
            self._thread.join()


class Gate:
    """A lane without a thread: ``call`` runs the job in the caller's thread once one of ``slots`` is free (a
    served generator's jobs, which wait on a server, not on this machine's GPU). ``spans`` and ``peak`` (the most
    jobs in progress at once) are kept for the benchmarks."""

    def __init__(self, name: str, slots: int, should_stop: StopCheck | None = None):
        self.name, self.slots = name, slots
        self.should_stop = should_stop or _never
        self.spans: list[tuple[float, float]] = []
        self.peak = 0
        self._sem = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._running = 0

    def call(self, fn: Callable[[], T], priority: float = 0) -> T:
        if self.should_stop():
            raise not_started(self.name)
        with self._sem:
            if self.should_stop():  # the stop came while it waited for a slot
                raise not_started(self.name)
            with self._lock:
                self._running += 1
                self.peak = max(self.peak, self._running)
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                with self._lock:
                    self._running -= 1
                    self.spans.append((t0, time.perf_counter()))

    def close(self, wait: bool = True) -> None:
        return None


@dataclass
class Lanes:
    """The lane of each kind of step; ``None`` runs it inline in the caller's thread. ``generator`` is the Gate of
    a served generator (None: its steps are ``gpu`` steps)."""

    gpu: Lane | None = None
    llm: Lane | None = None
    owned: list[Lane] = field(default_factory=list)
    should_stop: StopCheck = _never  # for the steps run inline
    generator: Gate | None = None

    def call(self, kind: str, fn: Callable[[], T], priority: float = 0) -> T:
        if kind == "generator":
            if self.generator is not None:
                return self.generator.call(fn, priority)
            kind = "gpu"
        lane = self.gpu if kind == "gpu" else self.llm
        job = _holding(GPU_LOCK, fn) if kind == "gpu" else fn
        if lane is not None:
            return lane.call(job, priority)
        if self.should_stop():
            raise not_started(kind)
        return job()

    def close(self, wait: bool = True) -> None:
        for lane in self.owned:
            lane.close(wait)


def _holding(lock: Any, fn: Callable[[], T]) -> Callable[[], T]:
    def job() -> T:
        with lock:
            return fn()

    return job


def remote_llm(plan_llm: dict[str, Any]) -> bool:
    """The memory plan's LLM choice is a remote endpoint (its calls can overlap the GPU work)."""
    return plan_llm.get("backend") == "openai"


def llm_lane_kind(plan_llm: dict[str, Any], llm_device: str, gpu_in_use: bool) -> str:
    """``none`` (a remote LLM: concurrent calls), ``gpu`` (a local LLM on the GPU: shares the GPU lane) or
    ``own`` (a local LLM on the CPU: its own serial lane)."""
    if remote_llm(plan_llm):
        return "none"
    if not gpu_in_use or llm_device == "cpu" or plan_llm.get("backend") == "embedded":
        return "own"
    return "gpu"


def pipeline_lanes(kind: str, should_stop: StopCheck | None = None, remote_slots: int | None = None) -> Lanes:
    """The lanes of a pipeline whose LLM lane is ``kind`` (``llm_lane_kind``); their threads work on the CUDA
    device current in the calling thread; once ``should_stop()`` is true no job starts on any of them.
    ``remote_slots``: the generator is served, its steps go through a Gate of that many slots."""
    device, stop = cuda_index(), should_stop or _never
    gate = Gate("generator", remote_slots, stop) if remote_slots else None
    gpu = Lane("gpu", device, stop)
    if kind == "none":
        return Lanes(gpu, None, [gpu], stop, gate)
    if kind == "gpu":
        return Lanes(gpu, gpu, [gpu], stop, gate)
    llm = Lane("llm", device, stop)
    return Lanes(gpu, llm, [gpu, llm], stop, gate)
