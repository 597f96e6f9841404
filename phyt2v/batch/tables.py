"""The one reader of table files: .csv, .jsonl, .json (a list of objects), .txt, .parquet -> rows.

``read_table`` keeps malformed rows as ``BadRow`` entries, so a caller can skip them (prompt sources
under ``--skip-bad``); ``read_rows`` is the strict form (metrics files, score prompt files): the first
malformed row is an ``InputError`` naming ``file:line``. Every error names the file and the fix.
CSV: UTF-8 with or without a BOM, quoted fields (commas, newlines); a row's line is where it starts.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "json", ".txt": "text", ".parquet": "parquet"}


class BadRow(Exception):
    """One malformed row (the message, without file and line)."""


@dataclass
class Table:
    path: Path
    data: bytes                                   # the file's bytes (for a digest)
    records: list[tuple[int | None, Any]]         # (line it starts on, dict, BadRow or a non-object JSON item)
    columns: list[str]                            # CSV header / JSON keys in first-seen order
    what: str                                     # "column" (csv, parquet) or "field" (json)

    def where(self, line: int | None) -> str:
        return f"{self.path.name}:{line}" if line else self.path.name


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or one InputError saying why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"cannot read {path}: file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {path}: it is a folder; pass a file") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied; check the file's permissions") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or first_line(err)}; check the path") from None


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a BOM is dropped); a binary or other-encoding file is an InputError with its line."""
    if b"\0" in data[:8192]:
        raise InputError(f"{Path(path).name}: not a text file (it holds NUL bytes: a video or other binary "
                         "file, or UTF-16 text); pass a UTF-8 .csv, .jsonl, .json or .txt file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{Path(path).name}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                         "save the file as UTF-8") from None


def file_format(path: Path, text: str = "") -> str:
    """csv | jsonl | json | text | parquet from the suffix; other suffixes by the first character."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is not None:
        return fmt
    head = text.lstrip()[:1]
    return "json" if head == "[" else "jsonl" if head == "{" else "csv"


def read_table(path: Path, fmt: str | None = None) -> Table:
    """Every record of the file, malformed ones as BadRow; errors that spoil the whole file raise."""
    path = Path(path)
    return _parse(path, read_bytes(path), fmt)


def _parse(path: Path, data: bytes, fmt: str | None) -> Table:
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt == "parquet":
        recs, cols = _parquet_records(path)
        return Table(path, data, recs, cols, "column")
    text = decode(data, path)
    fmt = fmt or file_format(path, text)
    if fmt == "csv":
        recs, cols = _csv_records(text, path.name)
        return Table(path, data, recs, cols, "column")
    if fmt == "text":
        recs = [(n, {"prompt": line}) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        return Table(path, data, recs, ["prompt"], "field")
    recs = _jsonl_records(text) if fmt == "jsonl" else _json_list_records(text, path.name)
    cols = list(dict.fromkeys(k for _, r in recs if isinstance(r, dict) for k in r))
    return Table(path, data, recs, cols, "field")


def read_rows(path: Path, *, where: str | None = None, fmt: str | None = None) -> list[dict]:
    """The rows of a table file; the first malformed row raises. With ``where``, each row gets that key
    set to its ``file:line`` (for later error messages)."""
    path = Path(path)
    data = read_bytes(path)
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise InputError(f"{path} is empty; pass the file with the rows")
    table = _parse(path, data, fmt)
    rows = []
    for line, rec in table.records:
        if not isinstance(rec, (dict, BadRow)):
            rec = BadRow(f"expected an object, got {type(rec).__name__}")
        if isinstance(rec, BadRow):
            raise InputError(f"{table.where(line)}: {rec}; fix that row") from None
        rows.append({**rec, where: table.where(line)} if where else rec)
    if not rows:
        raise InputError(f"{path} has no data rows (only a header?)")
    return rows


def _csv_records(text: str, fname: str) -> tuple[list[tuple[int | None, Any]], list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    recs: list[tuple[int | None, Any]] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise InputError(f"{fname}:1: no header row; the first line must name the columns")
        prev = reader.line_num
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) > len(header):
                recs.append((start, BadRow(f"{len(row)} fields but the header has {len(header)} "
                                           "(quote text that contains commas)")))
                continue
            recs.append((start, {h: (row[i] if i < len(row) else None) for i, h in enumerate(header)}))
    except csv.Error as err:
        raise InputError(f"{fname}:{reader.line_num}: bad CSV ({err}); fix the file") from None
    return recs, header


def _jsonl_records(text: str) -> list[tuple[int, Any]]:
    recs: list[tuple[int, Any]] = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                obj = BadRow(f"not valid JSON ({err.msg}, column {err.colno})")
            ok = isinstance(obj, (dict, BadRow))
            recs.append((n, obj if ok else BadRow(f"not a JSON object (got {type(obj).__name__})")))
    return recs


def _json_list_records(text: str, fname: str) -> list[tuple[int, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{fname}:{err.lineno}: not valid JSON ({err.msg}); fix the file") from None
    if not isinstance(data, list):
        raise InputError(f"{fname}: expected a JSON list of objects, got {type(data).__name__}; fix the file")
    # Walk the array once more to find the line each element starts on.
    decoder, skip = json.JSONDecoder(), re.compile(r"[\s,]*")
    recs: list[tuple[int, Any]] = []
    line, mark, pos = 1, 0, text.index("[") + 1
    for item in data:
        pos = skip.match(text, pos).end()
        line, mark = line + text.count("\n", mark, pos), pos
        recs.append((line, item))
        pos = decoder.raw_decode(text, pos)[1]
    return recs


def _parquet_records(path: Path) -> tuple[list[tuple[int | None, Any]], list[str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path.name} is a parquet file and pyarrow is not installed; "
                         "pip install pyarrow, or pass --from FILE with a CSV copy") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises its own error types for damaged files
        raise InputError(f"{path.name}: cannot read this parquet file ({first_line(err)})") from None
    return [(None, row) for row in table.to_pylist()], list(table.column_names)
