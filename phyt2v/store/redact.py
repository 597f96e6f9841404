"""One scrub for secrets: the API key never reaches disk or a message, even when an endpoint echoes it.

The key lives only in the environment. ``scrub`` replaces the value of every variable named by
``llm.api_key_env`` (registered with ``watch``) and of ``OPENAI_API_KEY`` with ``***``; the record
writers (``record.py``) pass everything they write through it."""

from __future__ import annotations

import json
import os

_ENV_NAMES: set[str] = {"OPENAI_API_KEY"}
MIN_LEN = 4  # shorter values would blank ordinary words


def watch(env_name: str | None) -> None:
    """Scrub the value of this environment variable from now on (``llm.api_key_env``)."""
    if env_name:
        _ENV_NAMES.add(env_name)


def secrets() -> list[str]:
    vals = {os.environ.get(n) or "" for n in _ENV_NAMES}
    return sorted((v for v in vals if len(v) >= MIN_LEN), key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` with every watched key (raw, and as it looks inside a JSON string) replaced by ``***``."""
    for key in secrets():
        if key in text:
            text = text.replace(key, "***")
        escaped = json.dumps(key, ensure_ascii=False)[1:-1]
        if escaped != key and escaped in text:
            text = text.replace(escaped, "***")
    return text
