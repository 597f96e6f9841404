"""Deadlines for HTTP calls to model endpoints, shared by every backend that talks to a server (the LLM, the
served captioner and judge): httpx's timeout is per socket read, so a server that trickles one byte a second
never trips it; ``call_with_deadline`` waits for a worker thread at most ``seconds`` instead."""

from __future__ import annotations

import threading
from typing import Any


def one_line(text: Any, limit: int = 300) -> str:
    """Collapse whitespace and cut, for error messages."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


class Abandoned(Exception):
    """A request still running at its deadline (it was abandoned)."""


def call_with_deadline(fn: Any, seconds: float, name: str = "phyt2v-llm-request") -> Any:
    """``fn()`` in a daemon thread named ``name``; its result or exception, or ``Abandoned`` after ``seconds``."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise Abandoned
    if "error" in box:
        raise box["error"]
    return box["value"]
