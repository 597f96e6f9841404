"""Everything a run does is on disk: ``run.json`` (atomic), round folders, ``calls.jsonl``.

Every text written here (and every JSONL line, see ``append_jsonl``) passes through ``redact.scrub``:
an API key echoed by an endpoint never reaches disk. Locks: ``locks.py``."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from .errors import Phyt2vError, first_line
from .locks import writers_lock
from .redact import scrub
from .schemas import RoundRecord, RunRecord, now


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + ``os.replace``: readers never see half a file."""
    atomic_write_bytes(path, scrub(text).encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def video_problem(path: Path) -> str | None:
    """Why a generated mp4 cannot be used (missing, empty, not an mp4, cut short), or None. Walks the
    top-level boxes only (no decoding): a file cut mid-write has a box running past its end."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    types, pos = [], 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return "cut short"
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if n == 1 and len(head) == 16:
                n = int.from_bytes(head[8:16], "big")
            elif n == 0:
                n = size - pos
            if n < 8 or pos + n > size:
                return "cut short"
            types.append(kind)
            pos += n
    if not types or types[0] != b"ftyp" or b"moov" not in types:
        return "not a complete mp4 (no header)"
    return None


class CallLog:
    """Appends one JSON line per model call: role, backend, model id, inputs, output, duration."""

    def __init__(self, path: Path | None):
        self.path = path
        self.total_s = 0.0
        self.count = 0

    @contextmanager
    def call(self, role: str, backend: Any, step: str, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {
            "time": now(), "role": role, "step": step,
            "backend": getattr(backend, "backend", type(backend).__name__),
            "model_id": getattr(backend, "model_id", None), "inputs": inputs,
        }
        t0 = time.perf_counter()
        try:
            yield entry  # the caller sets entry["output"]
            entry["ok"] = True
        except BaseException as e:
            entry["ok"] = False
            entry["error"] = f"{type(e).__name__}: {e}"
            raise
        finally:
            entry["duration_s"] = round(time.perf_counter() - t0, 4)
            self.total_s += entry["duration_s"]
            self.count += 1
            if self.path is not None:
                append_jsonl(self.path, entry)


class RunStore:
    """The folder of one run: ``run.json``, ``config.json``, ``calls.jsonl``, ``round-<k>/``."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.record_path = self.dir / "run.json"
        self.calls = CallLog(self.dir / "calls.jsonl")

    def round_dir(self, k: int) -> Path:
        d = self.dir / f"round-{k}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def load(self) -> RunRecord | None:
        if not self.record_path.is_file():
            return None
        try:
            return RunRecord.model_validate_json(self.record_path.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as e:
            raise Phyt2vError(f"{self.record_path} is not a valid run record ({first_line(e)}); "
                              "move it away or pass --fresh to start this run again") from None

    def save(self, rec: RunRecord) -> None:
        rec.updated = now()
        atomic_write_text(self.record_path, rec.model_dump_json(indent=2) + "\n")

    def save_config(self, effective: dict[str, Any]) -> None:
        atomic_write_json(self.dir / "config.json", effective)

    def write_round(self, rnd: RoundRecord) -> None:
        """Human-readable copies of a round's artifacts beside the video."""
        d = self.round_dir(rnd.index)
        atomic_write_text(d / "prompt.txt", rnd.prompt + "\n")
        if rnd.caption is not None:
            atomic_write_text(d / "caption.txt", rnd.caption + "\n")
        if rnd.scores is not None:
            atomic_write_json(d / "scores.json", rnd.scores.model_dump())
        if rnd.mismatch is not None:
            atomic_write_json(d / "mismatch.json", rnd.mismatch.model_dump())
        if rnd.refined_prompt is not None:
            atomic_write_text(d / "refined_prompt.txt", rnd.refined_prompt + "\n")
        atomic_write_json(d / "round.json", {"timings": rnd.timings, "models": rnd.models,
                                             "prompt_tokens": rnd.prompt_tokens, "done": rnd.done})
