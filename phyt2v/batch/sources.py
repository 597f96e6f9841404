"""Prompt sources: a benchmark name or a user file -> an ordered list of prompts.

Upstream copies of the named sets (the project's copies in ``../shared/benchmarks`` share their
formats). Tables with a ``video_url`` column have one row per generated video: captions are
deduplicated (first occurrence kept) and only prompt-level columns (PROMPT_LEVEL) go to meta.

- ``videophy``: Hugging Face dataset ``videophysics/videophy_test_public``, file
  ``videophy_test_public.csv`` (seen in the dataset's file tree): ``video_url``, ``caption``,
  ``states_of_matter``, ``complexity`` and human labels.
- ``videophy2``: Hugging Face dataset ``videophysics/videophy2_test``, file ``videophy2_test.csv``
  (about 3.4k rows, one per video; the name other public loaders download). Its prompt columns
  are taken to be ``caption``, ``upsampled_caption``, ``action``, ``category``, ``is_hard``
  (not confirmed here). Should the file name change, the dataset's file list is searched.
- ``phygenbench``: GitHub ``OpenGVLab/PhyGenBench``, ``PhyGenBench/prompts.json`` on ``main``
  (checked in a mirror of the repository: byte-identical to the shared copy, 160 items).
- ``lvd``: LVD's 500 benchmark prompts, generated in code (``lvd.py``); no download.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .. import resources
from ..errors import InputError, first_line
from ..store.files import atomic_write_bytes
from .lvd import lvd_items
from .tables import BadRow, read_table

BENCHMARKS: tuple[str, ...] = ("videophy", "videophy2", "phygenbench")  # downloaded; "lvd" is generated
HF_SETS = {
    "videophy": ("videophysics/videophy_test_public", "videophy_test_public.csv"),
    "videophy2": ("videophysics/videophy2_test", "videophy2_test.csv"),
}
PHYGENBENCH_URL = "https://raw.githubusercontent.com/OpenGVLab/PhyGenBench/main/PhyGenBench/prompts.json"
FETCH_TIMEOUT = 30.0
FILE_KINDS = {".txt": "text", ".csv": "csv", ".jsonl": "jsonl"}
PROMPT_COLUMNS = ("prompt", "caption", "text")
# Columns that describe the prompt (not one generated video) in the upstream per-video tables.
PROMPT_LEVEL = {"caption", "upsampled_caption", "states_of_matter", "complexity", "action",
                "category", "is_hard", "physical_laws", "sub_category", "main_category"}
ACCEPTED = "a benchmark (videophy, videophy2, phygenbench, lvd) or a .txt, .csv or .jsonl file"


@dataclass(frozen=True)
class PromptItem:
    index: int
    id: str
    prompt: str
    meta: dict[str, Any]
    line: int | None


@dataclass
class Source:
    name: str
    kind: str
    path: Path | None
    items: list[PromptItem]
    skipped: list[str]
    digest: str
    options: dict[str, Any]


def load_source(source: str, *, from_file: str | Path | None = None, column: str | None = None,
                caption: str = "caption", skip_bad: bool = False, cache_dir: Path | None = None) -> Source:
    """Turn SOURCE (a benchmark name or a prompt file) into a Source with its PromptItems."""
    name = str(source).strip()
    caption = {"upsampled_caption": "upsampled"}.get(caption, caption)
    if caption not in ("caption", "upsampled"):
        raise InputError(f"unknown caption choice '{caption}'; use 'caption' or 'upsampled'")
    if name.lower() == "lvd":
        if from_file is not None or column is not None or caption != "caption":
            raise InputError("lvd's prompts are generated in code: --from, --column and --caption do not apply")
        return lvd_source()
    if name.lower() in BENCHMARKS:
        name = name.lower()
        if caption != "caption" and name != "videophy2":
            raise InputError(f"--caption {caption} applies only to videophy2, not {name}")
        path = Path(from_file).expanduser() if from_file is not None else _fetch(name, cache_dir)
        return _load_benchmark(name, path, column, caption, skip_bad)
    if from_file is not None:
        raise InputError(f"--from FILE reads a local copy of a benchmark, but '{name}' is not one; "
                         f"use one of {', '.join(BENCHMARKS)}, or pass the file itself as the source")
    path = Path(name).expanduser()
    if not path.exists():
        near = difflib.get_close_matches(name.lower(), (*BENCHMARKS, "lvd"), n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise InputError(f"unknown prompt source '{name}'{hint}: not a benchmark and no such file; "
                         f"give {ACCEPTED}")
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path.name}: unsupported file type '{path.suffix or '(none)'}'; give {ACCEPTED}")
    if caption != "caption":
        raise InputError(f"--caption {caption} applies only to videophy2, not to a {kind} file")
    table = read_table(path, kind)
    if kind == "text":
        recs = [(n, r) for n, r in table.records if not r["prompt"].lstrip().startswith("#")]
        return _finish(path.stem, kind, path, table.data, recs, column="prompt", caption=None, skip_bad=skip_bad)
    recs, keys = table.records, table.columns
    line = 1 if kind == "csv" else next((n for n, r in recs if isinstance(r, dict)), 1)
    column = _pick_column(column, keys, path.name, line, table.what) if keys else column or "prompt"
    return _finish(path.stem, kind, path, table.data, recs, column=column, caption=None, skip_bad=skip_bad)


def lvd_source() -> Source:
    """LVD's 500 benchmark prompts (``lvd.py``), each repeat its own item."""
    pairs = lvd_items()
    items = [PromptItem(i, f"{i:04d}-{hashlib.sha1(p.encode()).hexdigest()[:6]}", p, meta, None)
             for i, (p, meta) in enumerate(pairs)]
    digest = hashlib.sha256(json.dumps(pairs, sort_keys=True).encode()).hexdigest()
    return Source(name="lvd", kind="lvd", path=None, items=items, skipped=[], digest=digest,
                  options={"column": None, "caption": None, "item_seeds": True})  # loop.seed + meta["seed"] each


def _load_benchmark(name: str, path: Path, column: str | None, caption: str, skip_bad: bool) -> Source:
    fmt = "json" if name == "phygenbench" else {".jsonl": "jsonl", ".json": "json"}.get(path.suffix.lower(), "csv")
    table = read_table(path, "parquet" if path.suffix.lower() == ".parquet" else fmt)
    data, recs, keys, what = table.data, table.records, table.columns, table.what
    want = column or ("upsampled_caption" if name == "videophy2" and caption == "upsampled" else "caption")
    if keys:
        _pick_column(want, keys, path.name, 1, what)
    per_video = "video_url" in keys   # an upstream table with one row per generated video
    return _finish(name, name, path, data, recs, column=want, skip_bad=skip_bad,
                   caption=caption if name == "videophy2" else None, dedupe=per_video,
                   keep=PROMPT_LEVEL if per_video else None,
                   ints=("complexity",) if name == "videophy" else ())


def _finish(name: str, kind: str, path: Path, data: bytes, recs: Iterable[tuple[int | None, Any]],
            *, column: str, caption: str | None, skip_bad: bool, dedupe: bool = False,
            keep: set[str] | None = None, ints: tuple[str, ...] = ()) -> Source:
    fname, items, skipped = path.name, [], []
    seen: dict[str, PromptItem] = {}
    for line, rec in recs:
        try:
            prompt, meta = _row(rec, column, keep, ints)
        except BadRow as err:
            msg = f"{fname}:{line}: {err}" if line else f"{fname}: {err}"
            if not skip_bad:
                raise InputError(f"{msg}; fix the row or pass --skip-bad") from None
            skipped.append(msg)
            continue
        if dedupe and prompt in seen:
            if str(meta.get("is_hard", "")).strip().lower() in ("1", "true", "yes"):
                seen[prompt].meta["is_hard"] = meta["is_hard"]
            continue
        index = len(items)
        item = PromptItem(index, f"{index:04d}-{hashlib.sha1(prompt.encode()).hexdigest()[:6]}",
                          prompt, meta, line)
        items.append(item)
        seen[prompt] = item
    if not items:
        why = f" ({len(skipped)} malformed rows skipped)" if skipped else ""
        raise InputError(f"{fname}: no prompts found{why}; give a file with at least one prompt")
    return Source(name=name, kind=kind, path=path, items=items, skipped=skipped,
                  digest=hashlib.sha256(data).hexdigest(), options={"column": column, "caption": caption})


def _row(rec: Any, column: str, keep: set[str] | None, ints: tuple[str, ...]) -> tuple[str, dict]:
    if isinstance(rec, BadRow):
        raise rec
    if not isinstance(rec, dict):
        raise BadRow(f"expected an object with a '{column}', got {type(rec).__name__}")
    value = rec.get(column)
    if value is None:
        raise BadRow(f"missing {column}")
    if not isinstance(value, str):
        raise BadRow(f"{column} is not text (got {type(value).__name__})")
    prompt = " ".join(value.split())
    if not prompt:
        raise BadRow(f"empty {column}")
    meta = {k: v for k, v in rec.items() if k is not None and k != column and (keep is None or k in keep)}
    for key in ints:
        if isinstance(meta.get(key), str) and meta[key].strip():
            try:
                meta[key] = int(meta[key])
            except ValueError:
                raise BadRow(f"{key} '{meta[key]}' is not an integer") from None
    return prompt, meta


def _pick_column(column: str | None, header: list[str], fname: str, line: int, what: str = "column") -> str:
    found = column if column is not None else next((c for c in PROMPT_COLUMNS if c in header), None)
    if found in header:
        return found
    have = ", ".join(repr(h) for h in header) or "none"
    need = f"no '{column}' {what}" if column else f"no prompt {what} ({', '.join(PROMPT_COLUMNS)})"
    raise InputError(f"{fname}:{line}: {need}; the {what}s are: {have}; pass --column NAME to choose one")


def _fetch(name: str, cache_to: Path | None) -> Path:
    """Download (or reuse the cached copy of) a named benchmark; InputError when offline."""
    how = "pass --from FILE with a local copy"
    if name == "phygenbench":
        root = Path(cache_to) if cache_to else resources.cache_dir("benchmarks")
        dest = root / "phygenbench_prompts.json"
        if dest.is_file():
            return dest
        try:
            with urllib.request.urlopen(PHYGENBENCH_URL, timeout=FETCH_TIMEOUT) as resp:
                data = resp.read()
            json.loads(data.decode("utf-8-sig"))
        except (OSError, ValueError, http.client.HTTPException) as err:
            raise InputError(f"could not fetch phygenbench from {PHYGENBENCH_URL} "
                             f"({first_line(err)}); {how}") from None
        try:
            atomic_write_bytes(dest, data)
        except OSError as err:
            raise InputError(f"cannot write the cache file {dest} ({first_line(err)}); "
                             "set PHYT2V_CACHE to a writable folder") from None
        return dest
    repo, filename = HF_SETS[name]
    try:
        from huggingface_hub import hf_hub_download, list_repo_files
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
        try:
            return Path(hf_hub_download(repo, filename, repo_type="dataset"))
        except EntryNotFoundError as err:
            if isinstance(err, LocalEntryNotFoundError):
                raise
        files = list_repo_files(repo, repo_type="dataset")
        for ext in (".csv", ".jsonl", ".json", ".parquet"):
            found = sorted(f for f in files if f.endswith(ext))
            if found:
                return Path(hf_hub_download(repo, found[0], repo_type="dataset"))
        raise InputError(f"the Hugging Face dataset {repo} has no csv/jsonl/json/parquet file; {how}")
    except InputError:
        raise
    except Exception as err:  # network, offline mode, missing repo, missing package: one line
        raise InputError(f"could not fetch {name} from Hugging Face dataset {repo} "
                         f"({first_line(err)}); {how}") from None
