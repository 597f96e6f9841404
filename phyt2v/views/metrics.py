"""Benchmark metrics with the published definitions: VideoPhy, VideoPhy-2 AutoEval, PhyGenBench (PhyGenEval).

Pure functions (no torch). Tables hold fractions in [0, 1]; the CLI prints percentages.

- VideoPhy: a video counts SA=1 (PC=1) when its probability or 0/1 label is >= 0.5; report the share
  of SA=1, PC=1 and both (joint). Human-labelled files use ``majority_sa``/``majority_pc`` instead.
- VideoPhy-2 AutoEval: integer ratings 1..5; mean SA/PC, share of SA >= 4, PC >= 4, and joint =
  share with SA >= 4 and PC >= 4; overall, per group and on the hard subset when a column marks it.
- PhyGenBench: per prompt ``closed = round((single + multi_gpt + video_gpt) / 3)`` (the GPT-4o stages)
  and ``open = round((single + multi_llava + video_intern) / 3)`` (LLaVA-Interleave + InternVideo2),
  Python's round (ties to even); ``final = (closed + open) // 2``; a category score is mean(final) / 3.
  Verified in OpenGVLab/PhyGenBench ``PhyGenEval/overall.py`` (commit b6416b78faec), which computes
  ``vqascore_gpt_gpt_score`` (saved as ``<model>_closed``) and ``vqascore_llava_intern_score``
  (saved as ``<model>_open``) and ``average_score = (closed + open) // 2``. Its output file
  ``result/<model>.json`` (prompts.json entries plus the five stage fields) is the input here. Stage
  scores are integers 0..3 there, so a sum / 3 never lands on .5: round's tie rule cannot matter, and
  the only halving is the final floor division (1.5 -> 1, 2.5 -> 2).

Rows may carry ``"_where"`` (e.g. ``"scores.csv line 7"``), used in error messages.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..batch import folder as batchdir
from ..batch.tables import read_rows
from ..errors import InputError
from .scorers import RATED, ensemble_members, kind_of, member_rows

KINDS = ("videophy", "videophy2", "phygenbench", "auto")
WHERE = "_where"
DEFAULT_GROUPS = ("states_of_matter", "main_category", "task")  # task: LVD's benchmark
HARD_COLUMNS = ("is_hard", "hard", "hard_subset")
TRUTHY = {"1", "1.0", "true", "yes", "y", "t"}
PHYGEN_STAGES = ("single", "multi_gpt", "multi_llava", "video_gpt", "video_intern")
PHYGEN_CATEGORIES = {"Mechanics": ("Force",), "Optics": ("Light",), "Thermal": ("Heat",),
                     "Material": ("Physical Properties", "Chemical Properties")}
_BATCH_WHERE = "{dir} results, prompt {id}"


# ---------------------------------------------------------------- column helpers

def columns_of(rows: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.update((k, None) for k in r if not k.startswith("_"))
    return list(seen)


def pick_column(rows: Sequence[dict], candidates: Sequence[str], what: str) -> str:
    """The first of ``candidates`` that the rows have, else an error listing the columns present."""
    present = columns_of(rows)
    for c in candidates:
        if c in present:
            return c
    raise InputError(f"no {what} column ({' or '.join(candidates)}); the columns present are: "
                     f"{', '.join(present) or '(none)'}. Rename the column or pass the right file.")


def check_group_columns(rows: Sequence[dict], group_by: Sequence[str]) -> list[str]:
    present = columns_of(rows)
    missing = [c for c in group_by if c not in present]
    if missing:
        raise InputError(f"--group-by {', '.join(missing)}: no such column; the columns present are: "
                         f"{', '.join(present) or '(none)'}")
    return list(group_by)


def default_groups(rows: Sequence[dict]) -> list[str]:
    present = columns_of(rows)
    return next(([c] for c in DEFAULT_GROUPS if c in present), [])


def _where(row: dict, i: int) -> str:
    return str(row.get(WHERE) or f"row {i + 1}")


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def probability(row: dict, i: int, col: str) -> float:
    x = _number(row.get(col))
    if x is None or not 0.0 <= x <= 1.0:
        raise InputError(f"{_where(row, i)}: {col} = {row.get(col)!r} is not a probability in [0, 1] or a "
                         "0/1 label; fix or remove that row")
    return x


def rating(row: dict, i: int, col: str) -> int:
    x = _number(row.get(col))
    if x is None or not 1 <= x <= 5 or x != int(x):
        hint = (" Values in [0, 1] look like VideoPhy probabilities: use KIND videophy."
                if x is not None and 0 <= x <= 1 else "")
        raise InputError(f"{_where(row, i)}: {col} = {row.get(col)!r} is not an integer rating 1..5 (an "
                         "unparseable evaluator answer?); fix or remove that row. Rows are never dropped "
                         f"silently: that would change the denominator the leaderboards use.{hint}")
    return int(x)


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in TRUTHY


def _ratio(k: float, n: int) -> float | None:
    return k / n if n else None


def group_value(row: dict, col: str) -> str:
    v = row.get(col)
    return "(none)" if v is None or str(v).strip() == "" else str(v)


def _grouped(rows: Sequence[dict], values: Sequence[Any], group_by: Sequence[str], stats) -> dict[str, dict]:
    """{column: {value: stats(values of the rows with that value)}}, values sorted."""
    out: dict[str, dict[str, Any]] = {}
    for col in group_by:
        keys = [group_value(r, col) for r in rows]
        out[col] = {k: stats([v for kk, v in zip(keys, values) if kk == k]) for k in sorted(set(keys))}
    return out


def _need_rows(rows: Sequence[dict]) -> None:
    if not rows:
        raise InputError("no rows to score: the file or batch is empty")


# ---------------------------------------------------------------- tables

def videophy_table(rows: list[dict], group_by: Sequence[str] = ()) -> dict:
    _need_rows(rows)
    sa_col = pick_column(rows, ("sa", "majority_sa"), "semantic adherence")
    pc_col = pick_column(rows, ("pc", "majority_pc"), "physical commonsense")
    group_by = check_group_columns(rows, group_by)
    flags = [(probability(r, i, sa_col) >= 0.5, probability(r, i, pc_col) >= 0.5) for i, r in enumerate(rows)]

    def stats(fs: Sequence[tuple[bool, bool]]) -> dict:
        n = len(fs)
        return {"n": n, "sa": _ratio(sum(s for s, _ in fs), n), "pc": _ratio(sum(p for _, p in fs), n),
                "joint": _ratio(sum(s and p for s, p in fs), n)}

    return {"kind": "videophy", "columns": {"sa": sa_col, "pc": pc_col}, "threshold": 0.5,
            "overall": stats(flags), "groups": _grouped(rows, flags, group_by, stats)}


def find_hard_column(rows: Sequence[dict], hard_column: str | None = None) -> str | None:
    present = columns_of(rows)
    if hard_column is not None:
        if hard_column not in present:
            raise InputError(f"--hard-column {hard_column}: no such column; the columns present are: "
                             f"{', '.join(present)}")
        return hard_column
    lowered = {c.lower(): c for c in present}
    return next((lowered[c] for c in HARD_COLUMNS if c in lowered), None)


def videophy2_table(rows: list[dict], group_by: Sequence[str] = (), hard_column: str | None = None) -> dict:
    _need_rows(rows)
    sa_col = pick_column(rows, ("sa_rating", "sa"), "SA rating")
    pc_col = pick_column(rows, ("pc_rating", "pc"), "PC rating")
    group_by = check_group_columns(rows, group_by)
    hard = find_hard_column(rows, hard_column)
    ratings = [(rating(r, i, sa_col), rating(r, i, pc_col)) for i, r in enumerate(rows)]

    def stats(xs: Sequence[tuple[int, int]]) -> dict:
        n = len(xs)
        return {"n": n, "sa_mean": _ratio(sum(s for s, _ in xs), n), "pc_mean": _ratio(sum(p for _, p in xs), n),
                "sa": _ratio(sum(s >= 4 for s, _ in xs), n), "pc": _ratio(sum(p >= 4 for _, p in xs), n),
                "joint": _ratio(sum(s >= 4 and p >= 4 for s, p in xs), n)}

    return {"kind": "videophy2", "columns": {"sa": sa_col, "pc": pc_col}, "hard_column": hard,
            "overall": stats(ratings), "groups": _grouped(rows, ratings, group_by, stats),
            "hard": stats([x for r, x in zip(rows, ratings) if truthy(r.get(hard))]) if hard else None}


def _stage(item: Any, i: int, key: str) -> float:
    """A stage score 0..3. PhyGenEval writes integers; a fractional value is kept as it is, so the
    formula below applies Python's round (ties to even) exactly as PhyGenEval/overall.py would."""
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3:
        what = "is missing" if not isinstance(item, dict) or key not in item else f"= {value!r} is not a number 0..3"
        raise InputError(f"item index {i}: '{key}' {what}; PhyGenEval stage scores are 0..3 "
                         f"({', '.join(PHYGEN_STAGES)}); pass the result JSON that PhyGenEval/overall.py writes "
                         "(result/<model>.json), or rerun its stages for that prompt.")
    return value


def phygenbench_final(item: dict, i: int = 0) -> tuple[int, int, int]:
    """(closed, open, final) for one prompt's stage results."""
    s = {k: _stage(item, i, k) for k in PHYGEN_STAGES}
    closed = round((s["single"] + s["multi_gpt"] + s["video_gpt"]) / 3)
    open_ = round((s["single"] + s["multi_llava"] + s["video_intern"]) / 3)
    return closed, open_, (closed + open_) // 2


def phygenbench_table(items: list[dict]) -> dict:
    _need_rows(items)
    of_category = {m: c for c, ms in PHYGEN_CATEGORIES.items() for m in ms}
    finals: dict[str, list[int]] = {c: [] for c in PHYGEN_CATEGORIES}
    every = []
    for i, item in enumerate(items):
        _, _, final = phygenbench_final(item, i)
        cat = of_category.get(str(item.get("main_category", "")).strip())
        if cat is None:
            raise InputError(f"item index {i}: main_category {item.get('main_category')!r} is not one of "
                             f"{', '.join(of_category)}")
        finals[cat].append(final)
        every.append(final)

    def score(xs: list[int]) -> float | None:
        return sum(xs) / len(xs) / 3 if xs else None

    return {"kind": "phygenbench", "categories": {c: score(xs) for c, xs in finals.items()},
            "average": score(every), "n": {**{c: len(xs) for c, xs in finals.items()}, "all": len(every)}}


def check_kind(kind: str) -> str:
    if kind in KINDS:
        return kind
    import difflib

    near = difflib.get_close_matches(kind, KINDS, n=2, cutoff=0.4)
    hint = f" Did you mean {' or '.join(near)}?" if near else ""
    raise InputError(f"unknown KIND '{kind}'; use one of {', '.join(KINDS)}.{hint}")


# ---------------------------------------------------------------- batch directories

def batch_kind(batch_dir: Path, kind: str = "auto") -> str:
    kind = check_kind(kind)
    if kind == "phygenbench":
        raise InputError(f"{batch_dir} is a batch directory: PhyGenBench scores come from the external "
                         f"PhyGenEval evaluator. Run `phyt2v export {batch_dir} --format phygenbench`, score "
                         "the exported videos with PhyGenEval, then `phyt2v metrics phygenbench <its result "
                         f"JSON>`. `phyt2v metrics auto {batch_dir}` gives the loop's own scores per main_category.")
    if kind == "auto":
        backend = ((batchdir.read_batch(batch_dir).get("config") or {}).get("scorer") or {}).get("backend")
        kind = "videophy2" if backend == "videophy2" else "videophy"
    return kind


def batch_rows(lines: Sequence[dict], kind: str, which: str | int, where: str) -> tuple[list[dict], int]:
    """(rows, excluded): one row per finished prompt from its chosen round (``batchdir.round_of``: "best" is
    the final render where loop.draft made one); a prompt without a usable score in that round (never
    scored, or an unparseable VideoPhy-2 rating) is excluded and counted. Each row's ``_render`` says how
    its video was rendered (``batchdir.render_of``: final, draft or full)."""
    rows, excluded = [], 0
    for line in lines:
        rnd = batchdir.round_of(line, which)
        if rnd is None:
            excluded += 1
            continue
        extra = rnd.get("extra") or {}
        sa, pc = (extra.get("sa_rating"), extra.get("pc_rating")) if kind == "videophy2" else (rnd.get("sa"), rnd.get("pc"))
        if _number(sa) is None or _number(pc) is None:
            excluded += 1
            continue
        meta = line.get("meta") if isinstance(line.get("meta"), dict) else {}
        rows.append({**meta, "id": line.get("id"), "prompt": line.get("prompt"), "round": rnd.get("index"),
                     "sa": sa, "pc": pc, WHERE: where.format(id=line.get("id")),
                     "_render": batchdir.render_of(rnd)})
    return rows, excluded


def render_counts(rows: Sequence[dict]) -> dict[str, int]:
    """How many rows of a table were rendered how: {"full": .., "draft": .., "final": ..}."""
    out = {"full": 0, "draft": 0, "final": 0}
    for r in rows:
        out[r["_render"]] += 1
    return out


def table_label(which: str | int, renders: dict[str, int]) -> str:
    """The round's name, saying when its scores are draft renders or full-settings final renders."""
    n = sum(renders.values())
    parts = [f"{name} render{'s' if renders[key] > 1 else ''}" if renders[key] == n
             else f"{renders[key]} of {n} {name} renders"
             for key, name in (("final", "final"), ("draft", "draft")) if renders[key]]
    label = batchdir.round_label(which)
    return f"{label} ({', '.join(parts)})" if parts else label


def _diff(best: dict | None, first: dict | None) -> dict | None:
    if not best or not first:
        return None
    return {k: (None if best[k] is None or first[k] is None else best[k] - first[k])
            for k in best if k != "n" and k in first}


def gain(first: dict, best: dict) -> dict:
    groups = {col: {v: _diff(s, first["groups"].get(col, {}).get(v)) for v, s in vals.items()}
              for col, vals in best["groups"].items()}
    return {"overall": _diff(best["overall"], first["overall"]), "groups": groups,
            "hard": _diff(best.get("hard"), first.get("hard"))}


def summarize_batch(batch_dir: Path, kind: str = "auto", group_by: Sequence[str] | None = None,
                    round: str | int | None = None, hard_column: str | None = None) -> dict:
    """The loop's own scores of a batch directory: round 1 and the best round with the gain, or one round."""
    batch_dir = Path(batch_dir)
    kind = batch_kind(batch_dir, kind)
    results = list(batchdir.read_results(batch_dir).values())
    done = [r for r in results if r.get("status") == "finished"]
    finished = [r for r in done if r.get("stop_reason") != "not_physical"]  # not run: under loop.min_physics
    n_not_physical = len(done) - len(finished)
    n_failed = sum(1 for r in results if r.get("status") == "failed")
    if not finished and n_not_physical:
        raise InputError(f"{batch_dir}: all {n_not_physical} finished prompt(s) were skipped by --min-physics "
                         f"(stop_reason not_physical; {n_failed} failed): there is nothing to score")
    if not finished:
        raise InputError(f"{batch_dir} has no finished prompts yet ({n_failed} failed); run or resume "
                         "`phyt2v batch` first")
    metas = [r.get("meta") if isinstance(r.get("meta"), dict) else {} for r in finished]
    groups = default_groups(metas) if group_by is None else check_group_columns(metas, group_by)
    where = _BATCH_WHERE.replace("{dir}", str(batch_dir))
    picks: list[str | int] = ["first", "best"] if round is None else [round]
    tables, warnings = {}, []
    members = ensemble_members(batchdir.read_batch(batch_dir).get("config"))  # a verifier ensemble: each scorer
    per_scorer = {x: {"backend": b, "kind": kind_of(b), "rounds": {}} for x, b in members.items()}
    for which in (batchdir.check_round(batch_dir, w, results) for w in picks):
        for x, b in members.items():
            mr = member_rows(finished, x, b, which, where)[0]
            per_scorer[x]["rounds"][str(which)] = None if not mr else (videophy_table(mr, groups) if b not in RATED
                                                                        else videophy2_table(mr, groups, hard_column))
        rows, excluded = batch_rows(finished, kind, which, where)
        if excluded:
            warnings.append(f"{batchdir.round_label(which)}: {excluded} finished prompt(s) excluded (no usable "
                            f"{'1..5 rating' if kind == 'videophy2' else 'score'} in that round)")
        if not rows:
            raise InputError(f"{batch_dir}: no finished prompt has a usable score in round {which}")
        table = (videophy_table(rows, groups) if kind == "videophy"
                 else videophy2_table(rows, groups, hard_column))
        renders = render_counts(rows)
        tables[str(which)] = {**table, "n_excluded": excluded, "renders": renders,
                              "label": table_label(which, renders)}
    if round is None and tables["first"]["overall"]["n"] != tables["best"]["overall"]["n"]:
        warnings.append("round 1 and the best round score different prompts, so the gain compares different sets")
    n_final = sum(1 for ln in finished if batchdir.final_of(ln) is not None)
    if n_not_physical:
        warnings.append(f"{n_not_physical} prompt(s) skipped by --min-physics (loop.min_physics) are not counted")
    if n_final:
        warnings.append(f"{n_final} of {len(finished)} finished prompt(s) have a final render (loop.draft): their "
                        "result ('best') is that full-settings render; round 1 and numbered rounds are the draft "
                        "renders, scored at the cheaper draft settings")
    if round is None and tables["first"]["renders"]["draft"] and tables["best"]["renders"]["final"]:
        warnings.append("the gain compares draft round 1 with the full-settings final render: not like for like "
                        "(a different fidelity); read it as the whole method's effect, drafts plus the final render")
    return {"kind": kind, "batch": str(batch_dir), "n_finished": len(finished), "n_failed": n_failed,
            "n_final": n_final, "n_not_physical": n_not_physical,
            "group_by": groups, "rounds": tables, "warnings": warnings, "scorers": per_scorer,
            "gain": gain(tables["first"], tables["best"]) if round is None else None}


# ---------------------------------------------------------------- entry points (files and batch folders)

def summarize_file(kind: str, path: Path, group_by: Sequence[str] | None = None,
                   hard_column: str | None = None) -> dict:
    """The table for one scores file (default group: states_of_matter, else main_category, when present)."""
    kind = check_kind(kind)
    if kind == "auto":
        raise InputError("KIND auto works on a batch directory; for a scores file name the benchmark: "
                         "videophy, videophy2 or phygenbench")
    rows = read_rows(path, where=WHERE)
    if kind == "phygenbench":
        return {**phygenbench_table(rows), "file": str(path)}
    groups = default_groups(rows) if group_by is None else list(group_by)
    table = videophy_table(rows, groups) if kind == "videophy" else videophy2_table(rows, groups, hard_column)
    return {**table, "file": str(path)}


def run_metrics(kind: str, path: Path, group_by: list[str] | None = None, round: str | None = None,
                hard_column: str | None = None) -> dict:
    """``phyt2v metrics KIND PATH``: the tables for a scores file or a batch folder."""
    path = Path(path)
    kind = check_kind(kind.strip().lower())
    if hard_column is not None and kind not in ("videophy2", "auto"):
        raise InputError("--hard-column applies to videophy2 only")
    if batchdir.is_batch_dir(path):
        return summarize_batch(path, kind, group_by=group_by, round=round, hard_column=hard_column)
    if path.is_dir():
        raise InputError(f"{path} is a folder but not a batch directory (no {batchdir.BATCH_FILE}); pass a "
                         "scores file (.csv, .jsonl, .json) or the folder `phyt2v batch` printed")
    if round is not None:
        raise InputError("--round applies to a batch directory, not to a scores file")
    if kind == "phygenbench" and group_by:
        raise InputError("--group-by does not apply to phygenbench: its categories are fixed "
                         "(Mechanics, Optics, Thermal, Material)")
    return summarize_file(kind, path, group_by, hard_column)
