"""Writing files so that a kill at any moment leaves either the old or the new content: atomic writes, JSONL
appends that cut a torn last line, fsync of a file written by someone else; slugs and timestamps for names.

Every text written here (and every JSONL line) passes through ``redact.scrub``: an API key echoed by an endpoint
never reaches disk."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .locks import writers_lock
from .redact import scrub


def now(timespec: str = "seconds") -> str:
    """The current UTC time in ISO 8601 (``timespec`` as ``datetime.isoformat``: seconds, microseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + ``os.replace``: readers never see half a file."""
    atomic_write_bytes(path, scrub(text).encode("utf-8"))


FILE_MODE = 0o666  # what a new file gets, less the umask (the kernel applies it): as any program's files


def temp_beside(path: Path) -> tuple[int, Path]:
    """A new, uniquely named temp file in ``path``'s folder (write descriptor, path), created with a normal file's
    mode, 0666 less the umask (``tempfile.mkstemp`` makes 0600: a run's files unreadable to the user's group)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def slugify(text: str, max_len: int = 48) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", text.lower()).strip("-")
    return (slug[:max_len].rstrip("-") or "prompt")


def fsync_path(path: Path) -> None:
    """Flush a file written by someone else (a video) and its folder entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _cut_torn_tail(fd: int) -> None:
    """Truncate a last line that has no final newline (a kill mid-write), reading back from the end only."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return
    pos = end
    while pos > 0:
        start = max(0, pos - 65536)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            os.ftruncate(fd, start + i + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


def append_jsonl(path: Path, obj: Any, *, lock: bool = False) -> None:
    """THE way to add a line to a JSONL file (calls.jsonl, results.jsonl, shard files): a torn last line is
    cut first, the line is scrubbed of secrets, written in one call, and fsynced. ``lock``: hold the file's
    lock (``writers_lock``) so lines from several processes never interleave."""
    path = Path(path)
    data = (scrub(json.dumps(obj, ensure_ascii=False, default=str)) + "\n").encode("utf-8")
    if lock:
        with writers_lock(path) as fd:
            _append(fd, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        _append(fd, data)
    finally:
        os.close(fd)


def _append(fd: int, data: bytes) -> None:
    _cut_torn_tail(fd)
    os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)
