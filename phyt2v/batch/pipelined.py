"""One pass of a pipelined batch (``phyt2v batch --concurrency K``): K prompts in flight, one thread each.

Each prompt runs exactly as in a sequential batch (``run_one``, the runner's ``Batch.try_one``: its folder lock,
every step on disk before the next, its result line appended under the file lock); only where the steps execute
changes: the Refiner's ``pipeline()`` puts GPU steps on one worker and a local LLM on one more (``runtime/lanes.py``),
so while one prompt waits for the LLM another uses the GPU. Prompts start in source order. A prompt's results do
not depend on what runs beside it: its seeds are its own and every model call is made with the same inputs as
sequentially.

Ctrl-C (or one prompt's interruption) stops every prompt after its current step and keeps what is done: no new
step and no new prompt starts; an error that would fail every prompt (a model that does not load) stops the others
the same way, then is raised. A second Ctrl-C returns at once, abandoning the steps in progress (their threads are
not waited for; what they had not written is redone on resume). This module knows nothing of the batch itself: it
is given the callables it needs.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from ..errors import Interrupted
from ..runtime.devices import cuda_index, use_cuda_index

_SKIPPED = object()


def pipelined_pass(run_one: Callable[[Any], Any], items: list[Any], k: int, *, tally: Callable[[Any], bool],
                   request_stop: Callable[[], None], stop_requested: Callable[[], bool] = lambda: False) -> list[Any]:
    """Run ``run_one(item)`` for ``items`` with ``k`` in flight, counting each outcome with ``tally`` (True: the
    item is held by another process, revisit it); ``request_stop()`` makes every run in flight stop after its
    current step, ``stop_requested()`` says it was asked (a first Ctrl-C). Returns the items to revisit; raises the
    first error (or Interrupted) after the others stopped, or at once after a second Ctrl-C."""
    locked: list[Any] = []
    stop: BaseException | None = None
    stopping = threading.Event()
    abandon = False

    def one(item: Any) -> Any:
        if stopping.is_set() or stop_requested():  # a prompt queued behind an error or Ctrl-C is left untouched
            return _SKIPPED
        try:
            return run_one(item)
        except BaseException:
            stopping.set()
            request_stop()  # every run in flight raises Interrupted after its current step
            raise

    def stop_all() -> None:
        request_stop()
        for fut in futures:
            fut.cancel()  # prompts not started yet stay untouched

    # each prompt thread works on the CUDA device of the calling thread (torch keeps it per thread)
    pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix="phyt2v-prompt", initializer=use_cuda_index,
                              initargs=(cuda_index(),))
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
                    if fut.result() is not _SKIPPED and tally(fut.result()):
                        locked.append(futures[fut])
                    continue
                if stop is None or (isinstance(stop, Interrupted) and not isinstance(err, Interrupted)):
                    stop = err  # the first cause wins over the interruptions it caused
                stop_all()
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, without waiting for the steps in progress
        stop = Interrupted("interrupted; finished steps are saved. Run the same command again to resume.")
        stopping.set()
        stop_all()
        abandon = True
    finally:
        pool.shutdown(wait=not abandon, cancel_futures=True)
    if stop is not None:
        raise stop
    return locked
