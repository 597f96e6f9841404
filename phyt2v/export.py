"""``phyt2v export BATCH_DIR --format ...``: a batch's videos in the layouts other evaluators and
trainers read.

- ``videophy-eval``: CSV ``videopath,caption`` (absolute paths, original prompts) for the official
  VideoPhy / VideoCon-Physics evaluator.
- ``phygenbench``: ``<name>/output_video_{i}.mp4`` with i = the 1-based position in PhyGenBench's
  prompts.json (the naming PhyGenEval's scripts open, e.g. PhyGenEval/overall.py).
- ``vbench``: ``{prompt}-{index}.mp4`` (VBench's naming for custom prompts; one sample per prompt,
  index 0).
- ``preference``: JSONL, one line per prompt: every scored round's video, prompt, SA/PC and score,
  ranked best first, plus chosen/rejected (for DPO-style trainers, e.g. groupwise preference
  optimisation over the rounds).

Videos are hard-linked where the file system allows, else copied. Only finished prompts are
exported; the rest are listed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import batchdir
from .errors import InputError
from .paths import ensure_dir, ensure_file_parent
from .record import atomic_write_text

FORMATS = ("videophy-eval", "phygenbench", "vbench", "preference")
_MAX_NAME_BYTES = 255


@dataclass
class ExportResult:
    path: Path                      # the file or folder written
    exported: int = 0
    missing: list[str] = field(default_factory=list)   # prompt ids with no finished, scored run
    skipped: list[str] = field(default_factory=list)   # "id: why" (e.g. a name the file system refuses)


def place(src: Path, dst: Path) -> None:
    """Hard link (no extra disk) or copy; an existing destination is replaced."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _chosen(batch_dir: Path, which: str | int) -> tuple[list[tuple[dict[str, Any], dict[str, Any], Path]], list[str]]:
    """(result line, round, absolute video path) of each finished prompt, in source order; missing ids."""
    results = batchdir.read_results(batch_dir)
    prompts = batchdir.read_prompts(batch_dir) or list(results.values())
    rows, missing = [], []
    for p in prompts:
        line = results.get(p["id"])
        rnd = batchdir.round_of(line, which) if line and line.get("status") == "finished" else None
        video = (batch_dir / rnd["video"]).resolve() if rnd and rnd.get("video") else None
        if video is None or not video.is_file():
            missing.append(p["id"])
            continue
        rows.append((line, rnd, video))
    return rows, missing


def export(batch_dir: str | Path, fmt: str, *, out: str | Path | None = None, which: str | int = "best",
           name: str | None = None) -> ExportResult:
    batch_dir = Path(batch_dir)
    header = batchdir.read_batch(batch_dir)
    if fmt not in FORMATS:
        import difflib

        near = difflib.get_close_matches(fmt, FORMATS, n=1)
        hint = f" Did you mean {near[0]}?" if near else ""
        raise InputError(f"unknown export format '{fmt}'.{hint} Formats: {', '.join(FORMATS)}")
    which = batchdir.parse_round(which)
    tag = which if isinstance(which, str) else f"round{which}"
    default = batch_dir / "exports" / {"videophy-eval": f"videophy-eval-{tag}.csv",
                                       "preference": "preference.jsonl"}.get(fmt, f"{fmt}-{tag}")
    dest = Path(out) if out is not None else default
    if fmt == "phygenbench" and header.get("source", {}).get("kind") != "phygenbench":
        raise InputError(f"{batch_dir} ran on '{header.get('source', {}).get('name')}', not phygenbench: "
                         "PhyGenEval numbers videos by their position in PhyGenBench's prompts.json. Run "
                         "`phyt2v batch phygenbench` for it, or export this batch as videophy-eval or vbench")
    if fmt in ("videophy-eval", "preference"):
        ensure_file_parent(dest)
    else:
        ensure_dir(dest)
    if fmt == "preference":
        return _preference(batch_dir, dest)
    rows, missing = _chosen(batch_dir, which)
    res = ExportResult(dest, missing=missing)
    if fmt == "videophy-eval":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["videopath", "caption"])
        for line, _, video in rows:
            w.writerow([str(video), line["prompt"]])
        atomic_write_text(dest, buf.getvalue())
        res.exported = len(rows)
    elif fmt == "phygenbench":
        folder = dest / (name or _model_name(header))
        for line, _, video in rows:
            place(video, folder / f"output_video_{line['index'] + 1}.mp4")
            res.exported += 1
        res.path = folder
    elif fmt == "vbench":
        for line, _, video in rows:
            fname = f"{line['prompt']}-0.mp4"
            if "/" in fname or "\0" in fname or len(fname.encode()) > _MAX_NAME_BYTES:
                res.skipped.append(f"{line['id']}: the prompt cannot be a file name (a '/' or over "
                                   f"{_MAX_NAME_BYTES} bytes)")
                continue
            place(video, dest / fname)
            res.exported += 1
    return res


def _model_name(header: dict[str, Any]) -> str:
    from .record import slugify

    model = (header.get("config") or {}).get("generator", {}).get("model") or "model"
    return f"phyt2v-{slugify(str(model).split('/')[-1], 40)}"


def _preference(batch_dir: Path, dest: Path) -> ExportResult:
    results = batchdir.read_results(batch_dir)
    res = ExportResult(dest)
    lines = []
    for line in results.values():
        if line.get("status") != "finished":
            res.missing.append(line["id"])
            continue
        cands = []
        for r in line.get("rounds") or []:
            video = (batch_dir / r["video"]).resolve() if r.get("video") else None
            if r.get("score") is None or video is None or not video.is_file():
                continue
            cands.append({"round": r["index"], "prompt": r["prompt"], "video": str(video),
                          "sa": r["sa"], "pc": r["pc"], "score": r["score"]})
        if not cands:
            res.missing.append(line["id"])
            continue
        cands.sort(key=lambda c: (-c["score"], c["round"]))
        for rank, c in enumerate(cands, 1):
            c["rank"] = rank
        lines.append({"id": line["id"], "prompt": line["prompt"], "meta": line.get("meta", {}),
                      "candidates": cands, "chosen": cands[0]["video"],
                      "rejected": cands[-1]["video"] if len(cands) > 1 else None,
                      "score_gap": round(cands[0]["score"] - cands[-1]["score"], 6)})
    atomic_write_text(dest, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    res.exported = len(lines)
    return res
