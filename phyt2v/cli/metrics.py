"""``phyt2v metrics KIND FILE|BATCH_DIR [--group-by COL ...] [--round first|best|N] [--json] [--hard-column COL]``.

KIND is videophy, videophy2, phygenbench or auto (batch directories). FILE is a .csv, .jsonl or .json
scores file; a batch directory gives the loop's own scores for round 1 and the best round (and the
gain), or for one ``--round``. Definitions live in ``metrics.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..batch import folder as batchdir
from ..views import metrics as M
from .options import json_opt

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


# ---------------------------------------------------------------- command

def register(app: typer.Typer) -> None:
    @app.command("metrics")
    def metrics(
        kind: str = typer.Argument(..., help="videophy | videophy2 | phygenbench | auto (batch directories)"),
        path: Path = typer.Argument(..., help="scores file (.csv, .jsonl, .json) or a batch directory"),
        group_by: Optional[list[str]] = typer.Option(None, "--group-by", help="report per value of this column "
                                                     "(repeatable; default states_of_matter or main_category)"),
        round_: Optional[str] = typer.Option(None, "--round", help="batch directory: first | best | N "
                                             "(default: round 1, best round and the gain; with loop.draft, "
                                             "best is the final render)"),
        as_json: bool = json_opt("print machine-readable JSON only"),
        hard_column: Optional[str] = typer.Option(None, "--hard-column", help="videophy2: the column marking "
                                                  "the hard subset (default: is_hard / hard / hard_subset)"),
    ) -> None:
        """Benchmark metrics with the published definitions (VideoPhy, VideoPhy-2, PhyGenBench)."""
        groups = None if not group_by else [c.strip() for g in group_by for c in g.split(",") if c.strip()]
        result = M.run_metrics(kind, path, groups, round_, hard_column)
        if as_json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print_result(result)
