"""The rows and the table of ``phyt2v score``: one scorer's columns, or with several (``--scorer a,b,c``) each
scorer's SA, PC and score side by side (``<scorer>_sa`` ...), then the combination (``sa``, ``pc``, ``score``: the
weighted means; ``rank`` with ``loop.combine: rank``, among the videos scored against the same prompt)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# Backend-specific columns, after SA and PC (CSV/JSONL; the table shows SA and PC).
EXTRA_COLUMNS = {
    "videocon": ["sa_pass", "pc_pass", "truncated"],
    "videophy2": ["sa_rating", "pc_rating", "rule_rating", "unparseable"],
    "videoscore2": ["visual", "visual_rating", "sa_rating", "pc_rating", "sa_soft", "pc_soft", "unparseable",
                    "rationale"],
}
RATED = ("videophy2",)  # scorers whose table cells show the 1..5 rating rather than the [0, 1] value


def extra_columns(backend: str, asked_rule: bool) -> list[str]:
    return [c for c in EXTRA_COLUMNS.get(backend, []) if asked_rule or c != "rule_rating"]


def columns(labels: dict[str, str], asked_rule: bool, ranked: bool) -> list[str]:
    """``labels``: scorer label -> backend (one entry ``{"scorer": backend}`` for a single scorer)."""
    out = ["path", "prompt"] + (["rule"] if asked_rule else [])
    if list(labels) == ["scorer"]:
        return out + ["sa", "pc"] + extra_columns(labels["scorer"], asked_rule) + ["error"]
    for label, backend in labels.items():
        out += [f"{label}_sa", f"{label}_pc", f"{label}_score"]
        out += [f"{label}_{c}" for c in extra_columns(backend, asked_rule)] + [f"{label}_error"]
    return out + ["sa", "pc", "score"] + (["rank"] if ranked else []) + ["error"]


def ensemble_row(res: Any, loop: Any) -> dict[str, Any]:
    """A flat row of an ensemble's result: each member's values prefixed by its label, then the combination."""
    from ..loop.ensemble import member_score

    row = res.row()
    table = (res.scores.extra.get("scorers") if res.scores else None) or {}
    for label, m in table.items():
        for k, v in m.items():
            row[f"{label}_{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
        sa, pc = m.get("sa"), m.get("pc")
        row[f"{label}_score"] = member_score(loop, sa, pc) if _ok(sa) and _ok(pc) else None
    row["score"] = member_score(loop, row["sa"], row["pc"]) if _ok(row["sa"]) and _ok(row["pc"]) else None
    return row


def add_ranks(rows: list[dict[str, Any] | None], labels: list[str]) -> None:
    """``rank`` of each complete row among the rows of the same prompt (``loop.ensemble.mean_ranks``)."""
    from ..loop.ensemble import mean_ranks

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r is not None and all(_ok(r.get(f"{x}_score")) for x in labels):
            groups.setdefault(r["prompt"], []).append(r)
    for group in groups.values():
        tables = [{x: (r[f"{x}_score"], float(r.get(f"{x}_weight") or 1.0)) for x in labels} for r in group]
        for r, v in zip(group, mean_ranks(tables)):
            r["rank"] = v


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))


def cell(row: dict[str, Any], key: str, rated: bool = False) -> str:
    if rated and f"{key}_rating" in row:
        rating = row[f"{key}_rating"]
        return "unparseable" if rating is None else str(rating)
    value = row.get(key)
    return f"{value:.3f}" if _ok(value) else "-"


def table(rows: list[dict[str, Any] | None], labels: dict[str, str], asked_rule: bool, ranked: bool):
    """The terminal table: per scorer SA and PC, then (several scorers) the combined SA, PC, score and rank."""
    from rich.table import Table

    single = list(labels) == ["scorer"]
    heads = ["SA", "PC"] if single else [f"{x} {k}" for x in labels for k in ("SA", "PC")] + ["SA", "PC", "score"]
    t = Table("video", *heads, *(["rank"] if ranked else []), *(["rule"] if asked_rule else []), "status")
    for row in rows:
        if row is None:
            continue
        ok = not row["error"]
        if single:
            rated = labels["scorer"] in RATED
            cells = [cell(row, "sa", rated) if ok else "-", cell(row, "pc", rated) if ok else "-"]
        else:
            cells = []
            for x, backend in labels.items():
                sub = {k[len(x) + 1:]: v for k, v in row.items() if k.startswith(f"{x}_")}
                cells += [cell(sub, "sa", backend in RATED), cell(sub, "pc", backend in RATED)]
            cells += [cell(row, "sa"), cell(row, "pc"), cell(row, "score")]
        if ranked:
            cells.append(f"{row['rank']:.2f}" if _ok(row.get("rank")) else "-")
        if asked_rule:
            rule = row.get("rule_rating") if single else row.get(f"{_rule_label(labels)}_rule_rating")
            cells.append(("unparseable" if rule is None else str(rule)) if ok and row.get("rule") else "-")
        t.add_row(Path(row["path"]).name, *cells, "[green]ok[/green]" if ok else "[red]error[/red]")
    return t


def _rule_label(labels: dict[str, str]) -> str:
    return next((x for x, b in labels.items() if b == "videophy2"), "")
