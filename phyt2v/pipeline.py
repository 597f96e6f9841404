"""One pass of a pipelined batch (``phyt2v batch --concurrency K``): K prompts in flight, one thread each.

Each prompt runs exactly as in a sequential batch (``Batch.try_one``: its folder lock, every step on disk before
the next, its result line appended under the file lock); only where the steps execute changes: the Refiner's
``pipeline()`` puts GPU steps on one worker and a local LLM on one more (``lanes.py``), so while one prompt
waits for the LLM another uses the GPU. Prompts start in source order. A prompt's results do not depend on
what runs beside it: its seeds are its own and every model call is made with the same inputs as sequentially.

Ctrl-C (or one prompt's interruption) stops every prompt after its current step and keeps what is done; an
error that would fail every prompt (a model that does not load) stops the others the same way, then is raised.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .errors import Interrupted

if TYPE_CHECKING:
    from .batch import Batch, BatchSummary

_SKIPPED = object()


def pipelined_pass(batch: "Batch", items: list[Any], k: int, summary: "BatchSummary") -> list[Any]:
    """Run ``items`` with ``k`` in flight; returns the items another process holds (to revisit)."""
    refiner = batch.refiner()
    locked: list[Any] = []
    stop: BaseException | None = None
    stopping = threading.Event()

    def one(item: Any) -> Any:
        if stopping.is_set():  # a prompt queued behind an error or Ctrl-C is left untouched
            return _SKIPPED
        try:
            return batch.try_one(item)
        except BaseException:
            stopping.set()
            refiner._stop_flag = True  # every run in flight raises Interrupted after its current step
            raise

    pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix="phyt2v-prompt")
    futures: dict[Future, Any] = {pool.submit(one, it): it for it in items}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.cancelled():
                    continue
                err = fut.exception()
                if err is None:
                    if fut.result() is not _SKIPPED and summary.tally(fut.result()):
                        locked.append(futures[fut])
                    continue
                if stop is None or (isinstance(stop, Interrupted) and not isinstance(err, Interrupted)):
                    stop = err  # the first cause wins over the interruptions it caused
                _stop_all(refiner, futures)
    except KeyboardInterrupt:  # a second Ctrl-C: stop everything after the steps in progress
        stop = Interrupted("interrupted; finished steps are saved. Run the same command again to resume.")
        stopping.set()
        _stop_all(refiner, futures)
    finally:
        pool.shutdown(wait=True)
    if stop is not None:
        raise stop
    return locked


def _stop_all(refiner: Any, futures: dict[Future, Any]) -> None:
    refiner._stop_flag = True  # every run raises Interrupted after its current step
    for fut in futures:
        fut.cancel()  # prompts not started yet stay untouched
