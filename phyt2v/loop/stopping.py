"""How a Refiner stops: a stop request (``Refiner.request_stop``, a first Ctrl-C) lets the steps in progress finish
and be written, and starts no new one (a step queued on a lane, a load, a prompt not begun); a second Ctrl-C raises
KeyboardInterrupt in the main thread at once (a pipelined batch then abandons its steps in progress: they are redone
on resume). A request holds until every call and pass it stops has ended; the next call or pass clears it.

The Refiner owns one :class:`StopSwitch` (private to it); other modules go through the Refiner's public methods.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import Interrupted


class StopSwitch:
    """The stop request of one Refiner. ``lock`` is the one each step start is emitted under: a request made before
    a step's ``check`` is seen by it, so no step starts once ``request()`` has returned."""

    def __init__(self, lock: threading.RLock):
        self.lock = lock
        self._requested = False
        self._busy = 0  # calls and passes in progress

    def request(self) -> None:
        with self.lock:
            self._requested = True

    def requested(self) -> bool:
        return self._requested

    def check(self, what: str, folder: Path | None = None) -> None:
        """Raise Interrupted (``what`` did not start) when a stop was requested."""
        if self._requested:
            where = f" in {folder}" if folder is not None else ""
            raise Interrupted(f"stopped before {what}; finished steps are saved{where}. Run the same command again "
                              "to resume.")

    @contextmanager
    def call(self) -> Iterator[None]:
        """A call or pass of the Refiner: when nothing else of it is in progress, an old request is spent."""
        with self.lock:
            if self._busy == 0:
                self._requested = False
            self._busy += 1
        try:
            yield
        finally:
            with self.lock:
                self._busy -= 1

    @contextmanager
    def sigint(self, warn: Callable[[str], None]) -> Iterator[None]:
        """In the main thread: a first Ctrl-C requests the stop (and says so), a second raises KeyboardInterrupt."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._requested:
                raise KeyboardInterrupt
            self.request()
            warn("Ctrl-C: finishing the current step, then stopping (press again to stop now)")

        old = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)
