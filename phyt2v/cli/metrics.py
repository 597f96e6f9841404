"""``phyt2v metrics KIND FILE|BATCH_DIR [--group-by COL ...] [--round first|best|N] [--json] [--hard-column COL]``.

KIND is videophy, videophy2, phygenbench or auto (batch directories). FILE is a .csv, .jsonl or .json
scores file; a batch directory gives the loop's own scores for round 1 and the best round (and the
gain), or for one ``--round``. Definitions live in ``metrics.py``.

``phyt2v metrics lvd-layouts FILE|BATCH_DIR`` scores LVD layouts (stage 1; ``views/lvd.py``) and
``phyt2v metrics lvd BATCH_DIR [--round] [--detector]`` the objects OWL-ViT finds in a batch's videos (stage 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..batch import folder as batchdir
from ..views import metrics as M
from ..views.lvd import KINDS as LVD_KINDS
from .options import json_opt

LVD_DETECTOR = "google/owlvit-base-patch32"

# ---------------------------------------------------------------- rendering

def _pct(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}")


def _mean(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def _cells(kind: str, s: dict | None, signed: bool = False) -> list[str]:
    if s is None:
        return ["-"] * (5 if kind == "videophy2" else 3)
    pcts = [_pct(s.get(k), signed) for k in ("sa", "pc", "joint")]
    return [_mean(s.get("sa_mean"), signed), _mean(s.get("pc_mean"), signed), *pcts] if kind == "videophy2" else pcts


def _rows(table: dict, ref: dict | None = None) -> list[tuple[str, str, dict | None, dict | None]]:
    """(group, value, stats, n-source) rows: overall, hard subset, then every group value."""
    src = ref or table
    out = [("overall", "", table["overall"], src["overall"])]
    if src.get("hard") is not None:
        out.append((f"hard subset ({src.get('hard_column')})", "", table.get("hard"), src["hard"]))
    for col, vals in table["groups"].items():
        out += [(col, v, s, src["groups"][col].get(v)) for v, s in vals.items()]
    return out


def render_table(kind: str, table: dict, title: str, ref: dict | None = None):
    """A rich table of one round (or, with ``ref`` = the best round's table, of a gain)."""
    from rich.table import Table

    gain = ref is not None
    unit = " (pp)" if gain else " %"
    heads = ["SA=1", "PC=1", "joint"] if kind == "videophy" else ["mean SA", "mean PC", "SA>=4", "PC>=4", "joint"]
    heads = [h + ("" if h.startswith("mean") else unit) for h in heads]
    t = Table("group", "value", title=title)
    for h in ["n", *heads]:
        t.add_column(h, justify="right")
    for group, value, s, nsrc in _rows(table, ref):
        t.add_row(group, value, str((nsrc or {}).get("n", "-")), *_cells(kind, s, signed=gain))
    return t


def render_phygenbench(table: dict):
    from rich.table import Table

    t = Table("category", title="PhyGenBench (PhyGenEval): mean(final) / 3")
    for h in ("n", "score", "%"):
        t.add_column(h, justify="right")
    for cat, score in [*table["categories"].items(), ("Average", table["average"])]:
        t.add_row(cat, str(table["n"]["all" if cat == "Average" else cat]), _mean(score), _pct(score))
    return t


def print_result(result: dict) -> None:
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    kind = result["kind"]
    if kind == "phygenbench":
        out.print(render_phygenbench(result))
        return
    if "rounds" not in result:
        out.print(render_table(kind, result, f"{kind}: {result['file']}"))
        if kind == "videophy2" and result.get("hard") is None:
            out.print("no hard-subset column found (pass --hard-column COL to name one)", highlight=False)
        return
    out.print(f"batch {result['batch']}: {kind}, {result['n_finished']} finished, {result['n_failed']} failed",
              highlight=False, soft_wrap=True)
    for warning in result["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    for which, table in result["rounds"].items():
        out.print(render_table(kind, table, f"{kind}, {table.get('label') or batchdir.round_label(which)}"))
    if result.get("gain"):
        mixed = result["rounds"]["first"].get("renders", {}).get("draft") and \
            result["rounds"]["best"].get("renders", {}).get("final")
        title = "gain (final render - draft round 1)" if mixed else "gain (best - round 1)"
        out.print(render_table(kind, result["gain"], f"{kind}, {title}", ref=result["rounds"]["best"]))
    for label, sc in (result.get("scorers") or {}).items():  # a verifier ensemble: each scorer's own tables
        for which, table in sc["rounds"].items():
            title = f"scorer {label} ({sc['kind']}), {batchdir.round_label(which)}"
            if table is None:
                out.print(f"{title}: no prompt has its scores in that round", highlight=False)
            else:
                out.print(render_table(sc["kind"], table, title))


def render_lvd(result: dict):
    """LVD's table: success / total and % per task, overall, then the per-count breakdowns."""
    from rich.table import Table

    where = result.get("batch") or result.get("file")
    stage = "stage 2: OWL-ViT on the videos" if result["kind"] == "lvd" else "stage 1: layouts"
    t = Table("task", title=f"LVD benchmark, {stage}: {where}")
    for h in ("success", "total", "%"):
        t.add_column(h, justify="right")
    rows = [*result["tasks"].items(), ("overall", result["overall"])]
    rows += [(f"numeracy, {k} object(s)", v) for k, v in result.get("numeracy_by_count", {}).items()]
    rows += [(f"dynamic spatial, {k} object(s)", v) for k, v in result.get("dynamic_spatial_by_objects", {}).items()]
    for name, s in rows:
        t.add_row(name.replace("_", " "), str(s["success"]), str(s["total"]), _pct(s["rate"]))
    return t


def _lvd(kind: str, path: Path, round_: str | None, as_json: bool, detector: str) -> None:
    from rich.console import Console

    from ..views import lvd

    out, err = Console(), Console(stderr=True)
    if kind == "lvd-layouts":
        result = lvd.score_layouts(path)
    else:
        from ..views.lvd_detect import score_videos
        from .progress import quiet_libraries

        quiet_libraries()
        with err.status("loading the detector ...") as status:
            def seen(done: int, total: int) -> None:
                status.update(f"OWL-ViT on the videos: {done}/{total}")

            result = score_videos(path, which=batchdir.parse_round(round_ or "best"), detector=detector,
                                  on_video=seen)
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    out.print(render_lvd(result))
    notes = {"unreadable": "replies could not be read (counted as failures)",
             "not_in_file": "benchmark items have no reply in the file (left out)",
             "unknown_prompts": "prompts of the file are not LVD's (ignored)",
             "without_layout": "runs recorded no layout (counted as failures)",
             "without_video": "prompts have no video in that round (counted as failures)"}
    for key, what in notes.items():
        if result.get(key):
            err.print(f"[yellow]note:[/yellow] {result[key]} {what}", highlight=False)
    for line in result.get("errors", [])[:5]:
        err.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


# ---------------------------------------------------------------- command

def register(app: typer.Typer) -> None:
    @app.command("metrics")
    def metrics(
        kind: str = typer.Argument(..., help="videophy | videophy2 | phygenbench | lvd-layouts (an LVD layout cache or a batch) | lvd (a batch: OWL-ViT on its videos) | auto (a batch)"),
        path: Path = typer.Argument(..., help="scores file (.csv, .jsonl, .json) or a batch directory"),
        group_by: Optional[list[str]] = typer.Option(None, "--group-by", help="report per value of this column "
                                                     "(repeatable; default states_of_matter, main_category or task)"),
        round_: Optional[str] = typer.Option(None, "--round", help="batch directory: first | best | N "
                                             "(default: round 1, best round and the gain; with loop.draft, "
                                             "best is the final render)"),
        as_json: bool = json_opt("print machine-readable JSON only"),
        hard_column: Optional[str] = typer.Option(None, "--hard-column", help="videophy2: the column marking "
                                                  "the hard subset (default: is_hard / hard / hard_subset)"),
        detector: str = typer.Option(LVD_DETECTOR, "--detector", help="lvd: the OWL-ViT detector, a hub id or a "
                                     "local folder"),
    ) -> None:
        """Benchmark metrics with the published definitions (VideoPhy, VideoPhy-2, PhyGenBench, LVD)."""
        if kind.strip().lower() in LVD_KINDS:
            return _lvd(kind.strip().lower(), path, round_, as_json, detector)
        groups = None if not group_by else [c.strip() for g in group_by for c in g.split(",") if c.strip()]
        result = M.run_metrics(kind, path, groups, round_, hard_column)
        if as_json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print_result(result)
