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


MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this many seconds


def retry_delay(backoff_s: float, attempts: int, retry_after: Any = None) -> float:
    """Seconds to wait before retry ``attempts`` (1-based): exponential backoff, or the server's Retry-After (a
    number of seconds, as text or a number) when longer, honoured up to ``MAX_RETRY_AFTER_S``; a Retry-After that
    is not a number is ignored."""
    delay = backoff_s * 2 ** (attempts - 1)
    if retry_after is None or retry_after == "":
        return delay
    try:
        return max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
    except (TypeError, ValueError):
        return delay


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


def error_detail(err: Exception) -> str:
    """The server's own message of an HTTP error (the openai SDK's ``body["error"]["message"]``, else the error's text),
    on one line, with any key scrubbed."""
    from ..store.redact import scrub

    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message", inner) if isinstance(inner, dict) else inner
    else:
        text = getattr(err, "message", None) or str(err)
    return scrub(one_line(text, 240))
