"""``phyt2v export BATCH_DIR --format ...``: a batch's videos in the layouts other evaluators and
trainers read.

- ``videophy-eval``: CSV ``videopath,caption`` (absolute paths, original prompts) for the official
  VideoPhy / VideoCon-Physics evaluator.
- ``phygenbench``: ``<name>/output_video_{i}.mp4`` with i = the 1-based position in PhyGenBench's
  prompts.json (the naming PhyGenEval's scripts open, e.g. PhyGenEval/overall.py).
- ``vbench``: ``{prompt}-{index}.mp4`` (VBench's naming for custom prompts; one sample per prompt,
  index 0).
- ``preference``: JSONL, one line per group of videos of one prompt, ranked best first, with
  chosen (best) / rejected (worst) and the score gap (for DPO-style trainers, e.g. PhyGDPO's groupwise
  preference optimisation). ``"group": "rounds"``: one per prompt, every scored round's video (the
  rewritten prompts; with loop.draft these are draft renders, marked ``"draft"``, and the final render is
  not ranked among them, being of another fidelity). ``"group": "seeds"``: one per round with loop.seeds
  > 1 (two or more scored seed videos of the same prompt): the seed videos, ranked.

``--round best`` (the default) takes the prompt's result: the final render when loop.draft made one.
``--round first`` / N take rounds as rendered in the loop: draft renders with loop.draft (counted in
``ExportResult.drafts``, which the command reports).

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

from ..batch import folder as batchdir
from ..errors import InputError
from ..store.files import atomic_write_text
from ..store.paths import ensure_dir, ensure_file_parent

FORMATS = ("videophy-eval", "phygenbench", "vbench", "preference")
_MAX_NAME_BYTES = 255


@dataclass
class ExportResult:
    path: Path                      # the file or folder written
    exported: int = 0
    missing: list[str] = field(default_factory=list)   # prompt ids with no finished, scored run
    skipped: list[str] = field(default_factory=list)   # "id: why" (e.g. a name the file system refuses)
    drafts: int = 0                                    # exported videos that are draft renders (loop.draft)


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
    which = batchdir.check_round(batch_dir, which)
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
    res = ExportResult(dest, missing=missing, drafts=sum(batchdir.render_of(rnd) == "draft" for _, rnd, _ in rows))
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
    from ..store.files import slugify

    model = (header.get("config") or {}).get("generator", {}).get("model") or "model"
    return f"phyt2v-{slugify(str(model).split('/')[-1], 40)}"


def _ranked(cands: list[dict[str, Any]], key: str, chosen: Any = None) -> dict[str, Any]:
    """Rank a group best first (ties: the loop's own pick, then the lower round or seed); chosen = best,
    rejected = worst."""
    cands.sort(key=lambda c: (-c["score"], c[key] != chosen, c[key]))
    for rank, c in enumerate(cands, 1):
        c["rank"] = rank
    return {"candidates": cands, "chosen": cands[0]["video"], "rejected": cands[-1]["video"] if len(cands) > 1 else None,
            "score_gap": round(cands[0]["score"] - cands[-1]["score"], 6)}


def _video(batch_dir: Path, rel: str | None) -> str | None:
    video = (batch_dir / rel).resolve() if rel else None
    return str(video) if video is not None and video.is_file() else None


def preference_groups(line: dict[str, Any], batch_dir: Path) -> list[dict[str, Any]]:
    """The ranked groups of one finished result line: its "rounds" group, then a "seeds" group per round
    with two or more scored seed videos."""
    head = {"id": line["id"], "prompt": line["prompt"], "meta": line.get("meta", {})}
    groups, rounds = [], []
    for r in line.get("rounds") or []:
        video = _video(batch_dir, r.get("video"))
        if r.get("score") is not None and video:
            rounds.append({"round": r["index"], "prompt": r["prompt"], "video": video, "sa": r["sa"], "pc": r["pc"],
                           "score": r["score"], "draft": bool(r.get("draft"))})
    if rounds:
        groups.append({**head, "group": "rounds", "draft": any(c["draft"] for c in rounds),
                       **_ranked(rounds, "round", line.get("best_round"))})
    for r in line.get("rounds") or []:
        seeds = [{"seed": c["seed"], "video": _video(batch_dir, c.get("video")), "sa": c.get("sa"),
                  "pc": c.get("pc"), "score": c.get("score")} for c in r.get("candidates") or []]
        seeds = [c for c in seeds if c["score"] is not None and c["video"]]
        if len(seeds) >= 2:
            groups.append({**head, "group": "seeds", "round": r["index"], "round_prompt": r["prompt"],
                           "draft": bool(r.get("draft")), **_ranked(seeds, "seed", r.get("seed"))})
    return groups


def _preference(batch_dir: Path, dest: Path) -> ExportResult:
    res = ExportResult(dest)
    lines = []
    for line in batchdir.read_results(batch_dir).values():
        groups = preference_groups(line, batch_dir) if line.get("status") == "finished" else []
        if not groups:
            res.missing.append(line["id"])
            continue
        lines += groups
        res.exported += 1
    atomic_write_text(dest, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    return res
