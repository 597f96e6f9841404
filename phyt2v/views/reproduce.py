"""``phyt2v reproduce TABLE``'s comparison: the paper's numbers (``papers.py``) beside ours (``metrics.py``).

Ours come from the same functions as ``phyt2v metrics``: ``summarize_batch`` on the batch folder (VideoPhy,
VideoPhy-2), ``summarize_file`` on a PhyGenEval result file (PhyGenBench). Pure functions, no torch.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..batch import folder as batchdir
from ..errors import InputError
from . import metrics as M
from .papers import TABLES, Column, PaperTable, paper_model

MEANINGLESS = ("tiny random-weight models (smoke preset): our numbers are MEANINGLESS; they show that the path "
               "from prompts to this table runs, nothing about the method")
PHYGEN_ROUNDS = {"first": "round 1", "best": "best round"}


def table_named(name: str) -> PaperTable:
    key = name.strip().lower()
    if key in TABLES:
        return TABLES[key]
    near = difflib.get_close_matches(key, list(TABLES), n=1, cutoff=0.4)
    hint = f" Did you mean {near[0]}?" if near else ""
    raise InputError(f"unknown table '{name}'; the tables are: {', '.join(TABLES)}.{hint}")


# ---------------------------------------------------------------- our rows

def _category_values(table: PaperTable, groups: dict[str, dict], row: str) -> list[str]:
    """The group values a category row stands for: the value itself, else (VideoPhy-2's free-text categories)
    the values that contain the row's stem ("activity" -> "Sports & Physical Activities")."""
    values = groups.get(table.group_column or "", {})
    if row in values:
        return [row]
    stem = row.lower()[:-1] if row.endswith("y") else row.lower()  # activity -> activit(ies)
    return [v for v in values if stem in v.lower()]


def _merge(stats: list[dict]) -> dict | None:
    """Several groups' stats as one (weighted by n), for a row that spans more than one category value."""
    stats = [s for s in stats if s and s.get("n")]
    if not stats:
        return None
    if len(stats) == 1:
        return stats[0]
    n = sum(s["n"] for s in stats)
    keys = [k for k in stats[0] if k != "n" and all(s.get(k) is not None for s in stats)]
    return {"n": n, **{k: sum(s[k] * s["n"] for s in stats) / n for k in keys}}


def batch_rows(table: PaperTable, summary_table: dict) -> dict[str, dict | None]:
    """{row: stats} for one round's table of ``summarize_batch`` (overall, hard subset, categories)."""
    out: dict[str, dict | None] = {}
    for row in table.rows:
        if row == "overall":
            out[row] = summary_table["overall"]
        elif row == "hard":
            out[row] = summary_table.get("hard")
        else:
            groups = summary_table["groups"].get(table.group_column or "", {})
            out[row] = _merge([groups[v] for v in _category_values(table, summary_table["groups"], row)])
    return out


def phygen_rows(result: dict) -> dict[str, dict | None]:
    """{row: {"n", "score"}} from ``phygenbench_table``'s result (the four categories and Average)."""
    out: dict[str, dict | None] = {c: {"n": result["n"][c], "score": s} for c, s in result["categories"].items()}
    out["Average"] = {"n": result["n"]["all"], "score": result["average"]}
    return out


# ---------------------------------------------------------------- the comparison

def columns_for(table: PaperTable, rounds: list[str] | None = None) -> tuple[Column, ...]:
    """The table's columns; PhyGenBench's are one per result file given (round 1 and/or the best round)."""
    if table.kind != "phygenbench":
        return table.columns
    return tuple(Column("score", w, "score") for w in rounds or [])


def compare(table: PaperTable, model: str | None, ours: dict[str, dict[str, dict | None]],
            columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    """One line per (row, column): the paper's number and its source, ours, ours - paper, and n."""
    papers = {(n.row, n.column): n for n in table.numbers(model)}
    lines = []
    for row in table.rows:
        for col in columns:
            paper = papers.get((row, col.name))
            stats = (ours.get(col.which) or {}).get(row)
            value = None if stats is None else stats.get(col.metric)
            lines.append({"row": row, "column": col.name, "ours_round": col.which, "metric": col.metric,
                          "paper": paper.value if paper else None, "ours": value,
                          "diff": None if paper is None or value is None else value - paper.value,
                          "n": None if stats is None else stats.get("n"),
                          "source": paper.source if paper else None,
                          "verified": paper.verified if paper else None})
    return lines


def paper_row_of(table: PaperTable, generator_model: str) -> tuple[str | None, list[str]]:
    """(the paper's model set beside ours, warnings): the matching model, else the table's default, said."""
    found = paper_model(table, generator_model)
    if found is not None or not table.models:
        return found, []
    if table.default_model is None:
        return None, []
    return table.default_model, [f"the paper's numbers are for {table.default_model}; this run's generator is "
                                 f"{generator_model}: the difference compares different models"]


def batch_comparison(table: PaperTable, batch_dir: Path, model: str | None) -> tuple[dict, list[dict]]:
    """(``summarize_batch``'s result, the comparison lines) for a VideoPhy or VideoPhy-2 table."""
    results = batchdir.read_results(batch_dir).values()
    present = M.columns_of([r.get("meta") if isinstance(r.get("meta"), dict) else {} for r in results])
    groups = [table.group_column] if table.group_column in present else []
    summary = M.summarize_batch(batch_dir, table.kind, group_by=groups)
    ours = {which: batch_rows(table, t) for which, t in summary["rounds"].items()}
    return summary, compare(table, model, ours, table.columns)


def parse_results(values: list[str] | None) -> dict[str, Path]:
    """``--results [first=|best=]FILE`` (repeatable; a bare FILE is the best round, as ``phyt2v export``)."""
    out: dict[str, Path] = {}
    for v in values or []:
        which, sep, path = v.partition("=")
        if not sep or which not in PHYGEN_ROUNDS:
            which, path = "best", v
        if which in out:
            raise InputError(f"--results {which}= given twice; give one PhyGenEval result file per round")
        p = Path(path).expanduser()
        if not p.is_file():
            raise InputError(f"--results {v}: no such file; pass the JSON that PhyGenEval/overall.py writes "
                             "(result/<model>.json)")
        out[which] = p
    return out


def phygen_comparison(table: PaperTable, files: dict[str, Path], model: str | None) -> tuple[dict, list[dict]]:
    """({round: ``summarize_file`` result}, the comparison lines) from PhyGenEval result files."""
    results = {w: M.summarize_file("phygenbench", p) for w, p in files.items()}
    ours = {w: phygen_rows(r) for w, r in results.items()}
    return results, compare(table, model, ours, columns_for(table, list(files)))
