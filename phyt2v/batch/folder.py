"""The on-disk format of a batch directory, and the readers that metrics, export and report share.

A batch directory holds one batch: one prompt source run under one effective config::

    <out>/<source>-<key of source + config hash>/
      batch.json              source, config hash, effective config, total prompts, "invocations" (each
                              command's time, pid, host, shard and runtime settings; atomic, under .batch.lock)
      prompts.jsonl           every prompt of the source in order: {"id", "index", "prompt", "meta"}
      results.jsonl           one line per finished prompt (see below), appended under the file's flock
                              and fsynced (``record.append_jsonl``)
      shards/results-<i>-of-<n>.jsonl   the same lines, written by shard i of n (merged into results.jsonl)
      runs/<run_id>/          one refine run per prompt: run.json, calls.jsonl, round-<k>/video.mp4, ...
      runs/<run_id>/.lock     the run's lock (``locks.FolderLock``): held by the process working on it

A result line (``results.jsonl``)::

    {"schema_version": 1, "id": "0007-3fa2c1", "index": 7, "prompt": "<original prompt>",
     "meta": {"states_of_matter": "solid_fluid", "complexity": 1},     # the source's other columns
     "status": "finished" | "failed",
     "run_id": "...", "run_dir": "runs/<run_id>",                      # relative to the batch directory
     "best_round": 2 | null, "stop_reason": "threshold" | ... | null,
     "rounds": [{"index": 1, "prompt": "...", "sa": 0.41, "pc": 0.33, "score": 0.37,
                 "extra": {...scorer extras, e.g. sa_rating/pc_rating for videophy2...},
                 "video": "runs/<run_id>/round-1/video.mp4", "caption": "...",
                 "seed": 42, "draft": false,                                  # draft: loop.draft render
                 "candidates": [{"seed": 42, "video": "...", "sa": .., "pc": .., "score": ..}, ...]}, ...],
                                                                  # candidates: loop.seeds > 1, else []
     "final": null | {"round": 2, "prompt": "...", "seed": 43, "sa": .., "pc": .., "score": .., "extra": {..},
                      "video": "runs/<run_id>/final/video.mp4", "caption": "..."},
                                  # loop.draft: the best draft round rendered at full settings; what
                                  # metrics, exports and the report use as the prompt's result
     "physics": null | {"score": 0.72, "physical": true, "extended_prompt": "..."},
                                  # PhyGDPO's CoT (loop.enhancer: phygdpo or loop.min_physics); a prompt
                                  # below loop.min_physics is finished with stop_reason "not_physical", no rounds
     "error": null | {"step": "...", "kind": "...", "message": "..."},
     "timings": {"wall_s": 12.3, "model_calls_s": 11.0},
     "config_hash": "...", "shard": [0, 1], "finished": "2026-11-22T10:00:00+00:00"}

Rounds that were never scored carry ``sa``/``pc``/``score`` null. When a prompt has several lines
(a failed prompt retried later, or the same line in a shard file and in the merged file), the line
with the latest ``finished`` wins.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError

RESULT_SCHEMA_VERSION = 1
BATCH_FILE = "batch.json"
PROMPTS_FILE = "prompts.jsonl"
RESULTS_FILE = "results.jsonl"
SHARDS_DIR = "shards"
RUNS_DIR = "runs"


def shard_file(batch_dir: Path, index: int, count: int) -> Path:
    return Path(batch_dir) / SHARDS_DIR / f"results-{index}-of-{count}.jsonl"


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line; a torn last line (a kill mid-write) is skipped with a warning."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if n >= len(lines) - 1:  # the last line, cut short by a crash: its prompt is simply redone
                warnings.warn(f"{path}:{n}: incomplete last line ignored (the batch was killed mid-write)")
                continue
            raise InputError(f"{path}:{n} is not valid JSON; the file was edited or damaged. "
                             "Remove that line to redo its prompt.") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{n} is not a JSON object")
        yield n, obj


def is_batch_dir(path: Path) -> bool:
    return (Path(path) / BATCH_FILE).is_file()


def read_batch(batch_dir: Path) -> dict[str, Any]:
    p = Path(batch_dir) / BATCH_FILE
    if not p.is_file():
        raise InputError(f"{batch_dir} is not a batch directory (no {BATCH_FILE}); "
                         "pass the folder `phyt2v batch` printed")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{p} is not valid JSON ({e}); rerun the batch command to rewrite it") from None


def read_prompts(batch_dir: Path) -> list[dict[str, Any]]:
    p = Path(batch_dir) / PROMPTS_FILE
    return [obj for _, obj in iter_jsonl(p)] if p.is_file() else []


def result_files(batch_dir: Path) -> list[Path]:
    d = Path(batch_dir)
    files = [d / RESULTS_FILE] if (d / RESULTS_FILE).is_file() else []
    shards = d / SHARDS_DIR
    if shards.is_dir():
        files += sorted(shards.glob("results-*-of-*.jsonl"))
    return files


def read_results(batch_dir: Path) -> dict[str, dict[str, Any]]:
    """Every prompt's latest result line, keyed by prompt id, in source order (merged file + shards)."""
    best: dict[str, dict[str, Any]] = {}
    for path in result_files(batch_dir):
        for _, obj in iter_jsonl(path):
            pid = obj.get("id")
            if not isinstance(pid, str):
                continue
            old = best.get(pid)
            if old is None or str(obj.get("finished") or "") >= str(old.get("finished") or ""):
                best[pid] = obj
    return dict(sorted(best.items(), key=lambda kv: (kv[1].get("index", 0), kv[0])))


def parse_round(text: str | int) -> str | int:
    """A ``--round`` value: ``"first"``, ``"best"`` or a round number from 1."""
    if text in ("first", "best"):
        return text
    if isinstance(text, int) or str(text).strip().isdigit():
        k = int(text)
        if k < 1:
            raise InputError(f"--round {k}: rounds are numbered from 1")
        return k
    raise InputError(f"--round {text}: use first, best or a round number (1, 2, ...)")


def last_round(batch_dir: Path, lines: Any = None) -> tuple[int, int | None]:
    """(the batch's last possible round, its loop.max_rounds or None): the config's max_rounds, or the highest
    round a result line has when that is higher or the config does not say."""
    cap = ((read_batch(batch_dir).get("config") or {}).get("loop") or {}).get("max_rounds")
    cap = cap if isinstance(cap, int) and cap >= 1 else None
    lines = read_results(batch_dir).values() if lines is None else lines
    seen = max((r.get("index") or 0 for ln in lines for r in ln.get("rounds") or []), default=0)
    return max(cap or 0, seen), cap


def check_round(batch_dir: Path, text: str | int, lines: Any = None) -> str | int:
    """A ``--round`` value (``parse_round``) that the batch has: a number past its last possible round is refused
    (``round_of`` would silently give every prompt its last round; the evaluators need the same round for all)."""
    which = parse_round(text)
    if isinstance(which, int):
        n, cap = last_round(batch_dir, lines)
        if which > n >= 1:
            span = "round 1" if n == 1 else f"rounds 1 to {n}"
            raise InputError(f"--round {which}: this batch's prompts have {span}"
                             + (f" (loop.max_rounds {cap})" if cap else "")
                             + f"; use first, best or {'1' if n == 1 else f'1 to {n}'}")
    return which


def round_label(which: str | int) -> str:
    return {"first": "round 1", "best": "best round"}.get(str(which), f"round {which}")


def render_of(rnd: dict[str, Any]) -> str:
    """How a picked round was rendered: ``"final"`` (loop.draft's full-settings render of the best draft
    round), ``"draft"`` (a round rendered at the cheaper draft settings) or ``"full"`` (an ordinary round)."""
    return "final" if rnd.get("final") else "draft" if rnd.get("draft") else "full"


def final_of(line: dict[str, Any]) -> dict[str, Any] | None:
    """The line's final render shaped like a round (index = the draft round it renders, ``"final": True``),
    or None when the line has none (no loop.draft, an older line, or the final was never scored)."""
    f = line.get("final")
    if not isinstance(f, dict) or f.get("score") is None:
        return None
    return {"index": f.get("round"), "prompt": f.get("prompt"), "sa": f.get("sa"), "pc": f.get("pc"),
            "score": f.get("score"), "extra": f.get("extra") or {}, "video": f.get("video"),
            "caption": f.get("caption"), "seed": f.get("seed"), "draft": False, "candidates": [], "final": True}


def round_of(line: dict[str, Any], which: str | int = "best") -> dict[str, Any] | None:
    """One round of a result line: ``"first"``, ``"best"`` or a 1-based number (the last scored round when
    the run stopped earlier). None when no round was scored.

    ``"best"`` is the prompt's result: the final render (``final_of``) when loop.draft made one, else the
    loop's best round. ``"first"`` and numbers pick rounds as the loop rendered and scored them: with
    loop.draft these are draft renders (their ``"draft"`` is true; ``render_of`` tells)."""
    if which == "best":
        final = final_of(line)
        if final is not None:
            return final
    scored = [r for r in line.get("rounds") or [] if r.get("score") is not None]
    if not scored:
        return None
    if which == "first":
        return scored[0]
    if which == "best":
        k = line.get("best_round")
        for r in scored:
            if r.get("index") == k:
                return r
        return max(scored, key=lambda r: (r["score"], -r["index"]))
    k = int(which)
    if k < 1:
        raise InputError(f"round {k}: rounds are numbered from 1")
    upto = [r for r in scored if r["index"] <= k]
    return upto[-1] if upto else scored[0]
