"""LVD's benchmark scores: stage 1 (the LLM's layouts, ``phyt2v metrics lvd-layouts``) and stage 2 (objects
detected on the generated videos, ``phyt2v metrics lvd``), both with LVD's predicates (``lvd_predicates``).

Stage 1 reads either
- an LVD layout cache: a JSON object mapping each prompt to its list of raw replies in LVD's text format
  (``cache/cache_lvd_v0.1_<model>.json`` in LVD's repository). As LVD's ``scripts/eval_stage_one.py``, the
  benchmark's items are taken in order and the k-th occurrence of a prompt gets its k-th reply. Items beyond a
  prompt's replies (a subset cache) and prompts that are not LVD's are left out and counted; a reply that cannot
  be read counts as a failure;
- or a batch folder of ``phyt2v batch lvd`` whose runs recorded a layout (``RunRecord.layout``, planned by the
  loop's layout step): every prompt with a result line is scored; a run without a layout counts as a failure.

The result: ``{"tasks": {task: {"success", "total", "rate"}}, "overall": {...}, "numeracy_by_count":
{"1": {...}, ...}, "dynamic_spatial_by_objects": {"1": {...}, "2": {...}}, ...}``, rates in [0, 1].
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from ..batch import folder as batchdir
from ..batch.lvd import TASKS, lvd_items
from ..errors import InputError
from ..loop.layouts import parse_lvd_text
from ..loop.parsing import ReplyError
from ..schemas import Layout
from . import lvd_predicates

KINDS = ("lvd-layouts", "lvd")


def _tally() -> dict[str, int]:
    return {"success": 0, "total": 0}


def _rated(t: dict[str, int]) -> dict[str, Any]:
    return {**t, "rate": round(t["success"] / t["total"], 4) if t["total"] else None}


def summarize(scored: Iterable[tuple[dict[str, Any], bool]]) -> dict[str, Any]:
    """Success counts per task (LVD's order), overall, per numeracy count and per number of moving objects."""
    tasks = {t: _tally() for t in TASKS}
    counts: dict[str, dict[str, int]] = {}
    movers: dict[str, dict[str, int]] = {}
    overall = _tally()
    for meta, ok in scored:
        for t in (tasks[meta["task"]], overall):
            t["success"] += int(ok)
            t["total"] += 1
        if meta["task"] == "numeracy":
            c = counts.setdefault(str(meta["count"]), _tally())
        elif meta["task"] == "dynamic_spatial":
            c = movers.setdefault(str(len(meta["objects"])), _tally())
        else:
            continue
        c["success"] += int(ok)
        c["total"] += 1
    return {"tasks": {k: _rated(v) for k, v in tasks.items() if v["total"]}, "overall": _rated(overall),
            "numeracy_by_count": {k: _rated(v) for k, v in sorted(counts.items())},
            "dynamic_spatial_by_objects": {k: _rated(v) for k, v in sorted(movers.items())}}


def read_cache(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not JSON ({e}); give an LVD layout cache or a batch folder") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError(f"{path} is not an LVD layout cache (a JSON object mapping each prompt to a list of "
                         "replies); give such a file or a `phyt2v batch lvd` folder")
    return data


def score_cache(path: Path) -> dict[str, Any]:
    """Stage 1 on an LVD layout cache (see the module doc)."""
    cache = read_cache(path)
    known = {p for p, _ in lvd_items()}
    unknown = [p for p in cache if p not in known]
    if len(unknown) == len(cache):
        raise InputError(f"no prompt of {path} is an LVD benchmark prompt (e.g. {next(iter(cache), '')!r}); "
                         "the cache's keys must be LVD's prompts as `phyt2v batch lvd` lists them")
    taken: Counter[str] = Counter()
    scored, skipped, unreadable, errors = [], 0, 0, []
    for prompt, meta in lvd_items():
        replies = cache.get(prompt) or []
        k = taken[prompt]
        taken[prompt] += 1
        if k >= len(replies):
            skipped += 1
            continue
        try:
            layout = parse_lvd_text(str(replies[k]))
        except ReplyError as e:
            unreadable += 1
            errors.append(f"{prompt!r} (reply {k + 1}): {e}")
            scored.append((meta, False))
            continue
        scored.append((meta, lvd_predicates.check(layout, meta)))
    unused = sum(max(0, len(v) - taken[p]) for p, v in cache.items() if p in known)
    return {"kind": "lvd-layouts", "file": str(path), **summarize(scored), "unreadable": unreadable,
            "not_in_file": skipped, "unknown_prompts": len(unknown), "unused_replies": unused,
            "errors": errors[:20]}


def _layout_of(batch_dir: Path, line: dict[str, Any]) -> Layout | None:
    run = batch_dir / str(line.get("run_dir") or "") / "run.json"
    try:
        data = json.loads(run.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    raw = data.get("layout") if isinstance(data, dict) else None
    try:
        return Layout.model_validate(raw) if raw else None
    except ValueError:  # a damaged record: counted with the runs that have no layout
        return None


def lvd_lines(batch_dir: Path) -> list[dict[str, Any]]:
    """The batch's result lines that are LVD benchmark items (their meta names an LVD task)."""
    lines = [ln for ln in batchdir.read_results(batch_dir).values()
             if (ln.get("meta") or {}).get("task") in lvd_predicates.PREDICATES]
    if not lines:
        raise InputError(f"{batch_dir} has no finished LVD benchmark prompt (run `phyt2v batch lvd` first; "
                         "its prompts carry the task in their meta)")
    return lines


def score_batch_layouts(batch_dir: Path) -> dict[str, Any]:
    """Stage 1 on the layouts recorded by a batch's runs."""
    lines = lvd_lines(batch_dir)
    layouts = [_layout_of(batch_dir, ln) for ln in lines]
    if not any(layouts):
        raise InputError(f"no run in {batch_dir} recorded a layout: the layout step did not run (the loop plans "
                         "layouts with loop.layout=plan or guide)")
    scored = [(ln["meta"], lay is not None and lvd_predicates.check(lay, ln["meta"])) for ln, lay in
              zip(lines, layouts)]
    return {"kind": "lvd-layouts", "batch": str(batch_dir), **summarize(scored),
            "without_layout": sum(lay is None for lay in layouts)}


def score_layouts(path: Path) -> dict[str, Any]:
    """``phyt2v metrics lvd-layouts FILE|BATCH``."""
    path = Path(path)
    if batchdir.is_batch_dir(path):
        return score_batch_layouts(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder but not a batch folder (no {batchdir.BATCH_FILE}); give an LVD "
                         "layout cache (.json) or a `phyt2v batch lvd` folder")
    if not path.is_file():
        raise InputError(f"{path}: no such file; give an LVD layout cache (.json) or a `phyt2v batch lvd` folder")
    return score_cache(path)
