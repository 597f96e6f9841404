"""Everything a run does is on disk: ``run.json`` (atomic), round folders, ``calls.jsonl``."""

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
from .schemas import RoundRecord, RunRecord, now


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + ``os.replace``: readers never see half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


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
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
                    f.flush()


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
