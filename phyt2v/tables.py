"""Reading table files (.csv, .jsonl, .json list) into rows of dicts, with file:line in every error."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .errors import InputError


def read_rows(path: Path, where: str = "_where") -> list[dict]:
    """Rows of a .csv, .jsonl or .json (a list of objects) file, each with ``_where`` = file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise InputError(f"{path} is empty; pass the scores file the evaluator wrote")
    suffix, head = path.suffix.lower(), text.lstrip()[:1]
    rows: list[dict] = []
    if suffix == ".json" or (suffix not in (".csv", ".jsonl") and head == "["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path} line {e.lineno} is not valid JSON ({e.msg})") from None
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise InputError(f"{path} must hold a JSON list of objects, one per video or prompt")
        rows = [{**x, where: f"{path} item index {i}"} for i, x in enumerate(data)]
    elif suffix == ".jsonl" or (suffix != ".csv" and head == "{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path} line {n} is not valid JSON ({e.msg}); write one object per line") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path} line {n} is not a JSON object")
            rows.append({**obj, where: f"{path} line {n}"})
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for r in reader:
            rows.append({**{k: v for k, v in r.items() if k is not None}, where: f"{path} line {reader.line_num}"})
    if not rows:
        raise InputError(f"{path} has no data rows (only a header?)")
    return rows
