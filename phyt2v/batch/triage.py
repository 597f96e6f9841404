"""Which failures stop a batch instead of failing one prompt and going on.

- A config error or a backend that does not load (``ConfigError``, ``LoadError``): every other prompt would fail
  the same way, so the batch stops at once (``stops_batch``).
- A dead or hung LLM endpoint: each prompt would fail in turn, after its retries (9 s to 128 s each). The batch
  stops once ``DEAD_LLM_AFTER`` prompts in a row failed with ``LLMError`` without any of their LLM calls answering
  (``EndpointWatch``); any other outcome (a prompt finished, failed otherwise, or got an answer from the LLM before
  failing) starts the count again.

Either way the prompts finished so far keep their result lines, and rerunning the same command resumes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ..errors import ConfigError, LLMError, LoadError, first_line
from ..store.record import RunStore

DEAD_LLM_AFTER = 3


def stops_batch(err: BaseException) -> bool:
    """Not this prompt's fault: every other prompt would fail the same way."""
    return isinstance(err, (ConfigError, LoadError))


def calls_mark(run_dir: Path) -> int:
    """How many lines the run's call log has now; the lines after them are the calls of the attempt that follows."""
    try:
        with open(RunStore(run_dir).calls.path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def llm_answered(run_dir: Path, mark: int) -> bool:
    """Whether any LLM call logged after line ``mark`` of the run's call log got an answer."""
    try:
        with open(RunStore(run_dir).calls.path, "rb") as f:
            lines = f.read().splitlines()[mark:]
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a torn last line
            continue
        if isinstance(entry, dict) and entry.get("role") == "llm" and entry.get("ok"):
            return True
    return False


class EndpointWatch:
    """Counts the prompts in a row whose every LLM call failed (``note`` after each prompt); ``check`` raises
    LLMError, naming the endpoint's last failure, once there are ``after`` of them."""

    def __init__(self, after: int = DEAD_LLM_AFTER):
        self.after = after
        self.streak = 0
        self.last = ""
        self._lock = threading.Lock()  # prompts of a pipelined batch end in their own threads

    def note(self, err: BaseException | None, answered: bool) -> None:
        with self._lock:
            if isinstance(err, LLMError) and not answered:
                self.streak += 1
                self.last = first_line(err)
            else:
                self.streak = 0

    def check(self) -> None:
        with self._lock:
            if self.streak < self.after:
                return
            n, last = self.streak, self.last
        raise LLMError(f"the LLM failed every call of the last {n} prompts, so the batch stops instead of failing "
                       f"every prompt in turn (last failure: {last.rstrip('.')}). Finished prompts are kept: fix the "
                       "LLM endpoint, then run the same command again to resume (the failed prompts are retried)")
