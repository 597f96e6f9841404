"""``phyt2v report``: one self-contained HTML page for a run or a batch directory.

This module turns records into plain values; the Jinja2 templates in ``templates/`` (autoescaped: all
user and model text is HTML-escaped) lay them out, and ``report.css``/``report.js`` beside them are
inlined at render time. The page makes no network request; videos are linked by paths relative to the
page, so it works opened from ``file://`` as long as it stays where it was written (by default
``report.html`` inside the run or batch directory).
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from ..batch import folder as batchdir
from ..errors import InputError, first_line
from ..store.files import atomic_write_text
from ..store.paths import ensure_file_parent
from ..store.record import Candidate, FinalRender, RoundRecord, RoundScores, RunRecord, StepError
from .layout_report import layout_view
from .scorers import round_card

REPORT_NAME = "report.html"
SERIES = (("sa", "SA", "#2563eb"), ("pc", "PC", "#d97706"), ("score", "score", "#059669"))
METRIC_ORDER = ("n", "sa", "pc", "joint", "score", "sa_mean", "pc_mean")
METRIC_LABELS = {"n": "n", "sa": "SA", "pc": "PC", "joint": "SA & PC", "score": "score",
                 "sa_mean": "SA mean", "pc_mean": "PC mean"}

_TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.update(css=Markup(_asset("report.css")), js=Markup(_asset("report.js")))
    return env


def _asset(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def num(v: Any, signed: bool = False) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "–" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:+d}" if signed else str(v)
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def word_diff(old: str | None, new: str) -> Markup:
    """``new`` as escaped HTML, with the words changed since ``old`` in ``<ins>``/``<del>``."""
    if old is None or old == new:
        return escape(new)
    a, b = old.split(), new.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape(" ".join(b[j1:j2])))
            continue
        if i2 > i1:
            out.append(Markup("<del>%s</del>") % " ".join(a[i1:i2]))
        if j2 > j1:
            out.append(Markup("<ins>%s</ins>") % " ".join(b[j1:j2]))
    return Markup(" ").join(out)


def rel_url(target: Path, page_dir: Path) -> str:
    try:
        return quote(Path(os.path.relpath(target, page_dir)).as_posix(), safe="/")
    except ValueError:  # another drive (Windows): an absolute file URL still works locally
        return target.resolve().as_uri()


# ---------------------------------------------------------------- inputs

def load_run(run_dir: Path) -> RunRecord:
    p = run_dir / "run.json"
    try:
        return RunRecord.model_validate_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{p} is not a readable run record ({first_line(e)}); pass a run folder that "
                         "`phyt2v refine` wrote") from None


def step_error(err: dict[str, Any]) -> StepError:
    return StepError(**{k: str(err.get(k) or "") for k in ("step", "kind", "message")})


def _line_scores(x: dict[str, Any]) -> RoundScores | None:
    return (RoundScores(**{k: x[k] for k in ("sa", "pc", "score")}, extra=x.get("extra") or {})
            if x.get("score") is not None else None)


def record_from_line(line: dict[str, Any], run_dir: Path, batch_dir: Path) -> RunRecord:
    """A run rebuilt from its batch result line alone (its run.json is missing or unreadable); lines written
    before seeds and drafts existed (no seed, draft, candidates or final) still work."""
    def rel(v: str | None) -> str | None:
        return os.path.relpath(batch_dir / v, run_dir) if v else None

    rounds = [RoundRecord(index=r["index"], prompt=r.get("prompt") or "", caption=r.get("caption"),
                          video=rel(r.get("video")), scores=_line_scores(r), seed=r.get("seed"),
                          draft=bool(r.get("draft")),
                          candidates=[Candidate(seed=c["seed"], video=rel(c.get("video")) or "", scores=_line_scores(c))
                                      for c in r.get("candidates") or []])
              for r in line.get("rounds") or []]
    f = line.get("final")
    final = (FinalRender(round=f["round"], prompt=f.get("prompt") or "", seed=f.get("seed") or 0,
                         video=rel(f.get("video")), caption=f.get("caption"), scores=_line_scores(f))
             if isinstance(f, dict) else None)
    err = line.get("error")
    return RunRecord(run_id=str(line.get("run_id")), prompt=line.get("prompt") or "", config_hash="",
                     status=line.get("status") if line.get("status") in ("finished", "failed") else "running",
                     rounds=rounds, best_round=line.get("best_round"), stop_reason=line.get("stop_reason"),
                     final=final, error=step_error(err) if err else None)


# ---------------------------------------------------------------- what the templates show

def chart_view(rounds: list[RoundRecord], best: int | None, prefix: str) -> dict[str, Any] | None:
    """Scores per round (y from 0 to 1), best round marked; each point links to its round card."""
    if not any(r.scores for r in rounds):
        return None
    w, h, left, right, top, bottom = 440, 190, 36, 36, 14, 28
    ks = [r.index for r in rounds]
    lo, hi = min(ks), max(ks)

    def x(k: int) -> float:
        return left + (w - left - right) * (k - lo) / (hi - lo) if hi > lo else (left + w - right) / 2

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - max(0.0, min(1.0, v)))

    series = []
    for key, label, color in SERIES:
        pts = [(r.index, getattr(r.scores, key)) for r in rounds if r.scores]
        series.append({"key": key, "label": label, "color": color,
                       "points": " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in pts) if len(pts) > 1 else "",
                       "dots": [{"k": k, "x": f"{x(k):.1f}", "y": f"{y(v):.1f}", "v": f"{v:.3f}"} for k, v in pts]})
    return {"w": w, "h": h, "x0": left, "x1": w - right, "prefix": prefix, "tick_y": h - 10,
            "grid": [{"y": f"{y(g):.1f}", "ty": f"{y(g) + 4:.1f}", "label": f"{g:g}"} for g in (0, .25, .5, .75, 1)],
            "ticks": [{"k": k, "x": f"{x(k):.1f}"} for k in ks],
            "best": {"x": f"{x(best):.1f}", "tx": f"{x(best) + 3:.1f}", "y1": top - 4, "y2": h - bottom,
                     "ty": top - 3} if best in ks else None,
            "series": series}


def video_src(rel: str | None, run_dir: Path, page_dir: Path) -> str | None:
    v = run_dir / rel if rel else None
    return rel_url(v, page_dir) if v is not None and v.is_file() else None


def candidate_view(c: Candidate, chosen: int | None, run_dir: Path, page_dir: Path) -> dict[str, Any]:
    """One seed's video of a best-of-N round; ``chosen`` marks the round's pick."""
    return {"seed": c.seed, "chosen": c.seed == chosen, "video_src": video_src(c.video, run_dir, page_dir),
            "novideo": f"video not found: {c.video}", "scorers": scorer_rows(c.scores),
            "scores": [(lab, num(getattr(c.scores, key))) for key, lab, _ in SERIES] if c.scores else None}


def extra_view(scores: RoundScores | None) -> list[tuple[str, str]]:
    """A scorer's extras as (name, value); an ensemble's members go to their own table (``scorer_rows``)."""
    return [(a, num(b)) for a, b in scores.extra.items() if a != "scorers"] if scores else []


def scorer_rows(scores: RoundScores | None) -> list[dict[str, str]]:
    """Each scorer of an ensemble: name, SA, PC, score and weight (formatted), or its error."""
    return [{k: (num(v) if k != "name" else v) for k, v in row.items()} for row in round_card(scores)]


def final_view(f: FinalRender | None, run_dir: Path, page_dir: Path) -> dict[str, Any] | None:
    """loop.draft's full-settings render of the best draft round: the run's result."""
    if f is None:
        return None
    return {"round": f.round, "seed": f.seed, "prompt": f.prompt, "caption": f.caption,
            "video_src": video_src(f.video, run_dir, page_dir),
            "novideo": f"video not found: {f.video}" if f.video else "not rendered yet",
            "scores": [(lab, num(getattr(f.scores, key))) for key, lab, _ in SERIES] if f.scores else None,
            "extra": extra_view(f.scores), "scorers": scorer_rows(f.scores)}


def card_view(r: RoundRecord, prev: str | None, best: int | None, run_dir: Path, page_dir: Path,
              prefix: str) -> dict[str, Any]:
    v = run_dir / r.video if r.video else None
    tokens = f" · {r.prompt_tokens} tokens" if r.prompt_tokens is not None else ""
    tokens += " (over the token budget)" if r.over_budget else ""
    return {"k": r.index, "id": f"{prefix}r{r.index}", "best": r.index == best, "draft": r.draft,
            "seed": r.seed, "candidates": [candidate_view(c, r.seed, run_dir, page_dir) for c in r.candidates],
            "video_src": rel_url(v, page_dir) if v is not None and v.is_file() else None,
            "novideo": f"video not found: {r.video}" if r.video else "no video",
            "scores": [(lab, num(getattr(r.scores, key))) for key, lab, _ in SERIES] if r.scores else None,
            "extra": extra_view(r.scores), "scorers": scorer_rows(r.scores),
            "has_prev": prev is not None, "tokens": tokens, "prompt_diff": word_diff(prev, r.prompt),
            "caption": r.caption, "mismatch": r.mismatch,
            "principle": r.refinement.principle if r.refinement is not None else None,
            "layout": layout_view(r.layout, r.video_info, [video_src(f, run_dir, page_dir)
                                                           for f in (r.layout.frames if r.layout else [])]),
            "timings": [(a.removesuffix("_s"), f"{b:.2f}") for a, b in (r.timings or {}).items()]}


def run_view(rec: RunRecord, run_dir: Path, page_dir: Path, prefix: str) -> dict[str, Any]:
    """Facts, the error if any, the chart and the round cards of one run."""
    facts = [("status", rec.status), ("best round", rec.best_round or "–"), ("stop reason", rec.stop_reason or "–"),
             ("rounds", len(rec.rounds))]
    if rec.final is not None:
        facts.insert(2, ("result", f"final render of round {rec.final.round} at full settings (rounds are drafts)"))
    facts += [(f"{role} model", m) for role, m in rec.models.items()] + [("run", rec.run_id)]
    prevs = [None] + [r.prompt for r in rec.rounds]
    return {"facts": facts, "error": rec.error, "rules": rec.rules, "final": final_view(rec.final, run_dir, page_dir),
            "chart": chart_view(rec.rounds, rec.best_round, prefix),
            "has_videos": any(r.video for r in rec.rounds) or rec.final is not None,
            "cards": [card_view(r, p, rec.best_round, run_dir, page_dir, prefix) for r, p in zip(rec.rounds, prevs)]}


def run_page(run_dir: Path, page_dir: Path) -> str:
    rec = load_run(run_dir)
    return render("run.html.j2", title=f"phyt2v run: {rec.prompt}", rec=rec,
                  view=run_view(rec, run_dir, page_dir, "run-"))


# ---------------------------------------------------------------- batch

def fallback_summary(results: dict[str, dict[str, Any]], reason: str) -> dict[str, Any]:
    """Mean SA/PC/score of the first and the best round over finished prompts, when metrics is unavailable."""
    fin = [ln for ln in results.values() if ln.get("status") == "finished"]
    tables = {}
    for which in ("first", "best"):
        rs = [r for r in (batchdir.round_of(ln, which) for ln in fin) if r is not None]
        overall: dict[str, Any] = {"n": len(rs)}
        for key in ("sa", "pc", "score"):
            vals = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
            overall[key] = sum(vals) / len(vals) if vals else None
        tables[which] = {"kind": "mean", "overall": overall, "groups": {}}
    return {"kind": "mean scores", "n_finished": len(fin), "n_failed": len(results) - len(fin), "rounds": tables,
            "gain": None, "note": f"phyt2v.views.metrics unavailable ({reason}): plain means of the scorer's SA/PC/score"}


def summarize(batch_dir: Path, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    try:
        from .metrics import summarize_batch

        summary = summarize_batch(batch_dir)
        if not isinstance(summary, dict) or not isinstance(summary.get("rounds"), dict):
            raise TypeError("summarize_batch returned no 'rounds' tables")
        return summary
    except Exception as e:  # any failure there must not cost the report
        return fallback_summary(results, f"{type(e).__name__}: {first_line(e)}")


def metric_keys(*stats: dict[str, Any]) -> list[str]:
    keys = {k for s in stats for k in (s or {}) if k != "kind"}
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))


def metrics_view(summary: dict[str, Any]) -> dict[str, Any]:
    """The round 1 / best / gain table: headers, and per row a label and its cells (formatted numbers)."""
    first, best = (summary["rounds"].get(w) or {} for w in ("first", "best"))
    gain = summary.get("gain") or {}
    rows = [("overall", first.get("overall") or {}, best.get("overall") or {}, gain.get("overall"))]
    fg, bg, gg = (t.get("groups") or {} for t in (first, best, gain))
    for col in dict.fromkeys([*fg, *bg]):
        for val in dict.fromkeys([*(fg.get(col) or {}), *(bg.get(col) or {})]):
            rows.append((f"{col} = {val}", (fg.get(col) or {}).get(val) or {}, (bg.get(col) or {}).get(val) or {},
                         (gg.get(col) or {}).get(val)))
    if isinstance(best.get("hard"), dict) or isinstance(first.get("hard"), dict):
        rows.append(("hard subset", first.get("hard") or {}, best.get("hard") or {}, gain.get("hard")))
    keys = metric_keys(*(r[1] for r in rows), *(r[2] for r in rows))
    table = []
    for label, f, b, g in rows:
        cells = []
        for k in keys:
            if k == "n":
                cells.append(num(b.get("n", f.get("n"))))
                continue
            fv, bv = f.get(k), b.get(k)
            both = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (fv, bv))
            gv = g[k] if isinstance(g, dict) and k in g else (bv - fv if both else None)
            cells += [num(fv), num(bv), num(gv, signed=True)]
        table.append((label, cells))
    notes = ([summary["note"]] if summary.get("note") else []) + list(summary.get("warnings") or [])
    labels = [_sub(first, "round 1"), _sub(best, "best"), "gain"]
    return {"kind": summary.get("kind"), "heads": [(METRIC_LABELS.get(k, k), 1 if k == "n" else 3) for k in keys],
            "subheads": [h for k in keys for h in (["prompts"] if k == "n" else labels)],
            "rows": table, "notes": notes}


def _sub(table: dict[str, Any], plain: str) -> str:
    """A column's name; with loop.draft, it says which scores are draft renders and which final renders."""
    renders = table.get("renders") or {}
    return f"{plain} ({table['label'].split('(', 1)[1]}" if (renders.get("draft") or renders.get("final")) \
        and "(" in str(table.get("label")) else plain


def batch_page(batch_dir: Path, page_dir: Path) -> str:
    header = batchdir.read_batch(batch_dir)
    prompts = batchdir.read_prompts(batch_dir)
    results = batchdir.read_results(batch_dir)
    src = header.get("source") or {}
    items = sorted(list(results.values()) + [p for p in prompts if p.get("id") not in results],
                   key=lambda it: it.get("index") if isinstance(it.get("index"), int) else 0)
    total = header.get("selected") or len(prompts) or len(results)
    n_fin = sum(1 for ln in results.values() if ln.get("status") == "finished")
    rows, sections = [], []
    for it in items:
        pid, ran = str(it.get("id")), "status" in it
        aid = "p-" + anchor(pid)
        meta = it.get("meta") or {}
        first, best = (batchdir.round_of(it, w) if it.get("rounds") else None for w in ("first", "best"))
        mark = (f"{batchdir.render_of(first)} → {batchdir.render_of(best)}"
                if first is not None and best is not None and "full" not in (batchdir.render_of(first),
                                                                              batchdir.render_of(best)) else "")
        pairs = [{"first": num(first[key]), "best": num(best[key]), "sort": best[key], "mark": mark}
                 if first is not None and best is not None else None for key in ("sa", "pc")]
        err = it.get("error") or {}
        rows.append({"id": pid, "anchor": aid if ran else None, "prompt": it.get("prompt"), "meta": meta,
                     "pairs": pairs, "status": it.get("status") or "not run", "error": err or None})
        if ran:
            sections.append({"id": pid, "anchor": aid, "prompt": it.get("prompt"), "meta": meta,
                             **_section_run(it, batch_dir, page_dir, aid, err)})
    facts = [("source", f'{src.get("name")} ({src.get("kind")})'), ("config", header.get("config_hash")),
             ("prompts", f"{n_fin} finished, {len(results) - n_fin} failed, {total} total"),
             ("updated", header.get("updated"))]
    summary = summarize(batch_dir, results)
    per_scorer = [(f"{x} ({sc['kind']})", metrics_view({"kind": sc["kind"], "rounds": sc["rounds"]}))
                  for x, sc in (summary.get("scorers") or {}).items() if all(sc["rounds"].values())]
    return render("batch.html.j2", title=f"phyt2v batch: {src.get('name') or batch_dir.name}", name=batch_dir.name,
                  source=src, facts=facts, metrics=metrics_view(summary), per_scorer=per_scorer, prompts=rows,
                  sections=sections)


def _section_run(it: dict[str, Any], batch_dir: Path, page_dir: Path, aid: str, err: dict) -> dict[str, Any]:
    """{"run": view} from the run's record (or, failing that, its result line), else {"problem": text}."""
    run_dir = batch_dir / (it.get("run_dir") or f"{batchdir.RUNS_DIR}/{it.get('run_id')}")
    try:
        rec = load_run(run_dir)
        if rec.error is None and err:  # the prompt failed before its run recorded why
            rec.error = step_error(err)
    except InputError as e:
        try:
            rec = record_from_line(it, run_dir, batch_dir)
        except (ValueError, TypeError, KeyError) as e2:
            return {"run": None, "problem": f"{e}; its result line is unreadable too ({first_line(e2)})"}
    return {"run": run_view(rec, run_dir, page_dir, aid + "-"), "problem": None}


def write_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the report page for a run or batch directory; returns the page's path."""
    p = Path(path)
    if p.is_file() and p.name in ("run.json", batchdir.BATCH_FILE):
        p = p.parent
    if not p.exists():
        raise InputError(f"{p} does not exist; pass a run folder (`phyt2v refine` prints it) or a batch folder")
    target = Path(out) if out is not None else p / REPORT_NAME
    if target.is_dir():
        target = target / REPORT_NAME
    is_batch = batchdir.is_batch_dir(p)
    if not is_batch and not (p / "run.json").is_file():
        raise InputError(f"{p} is neither a run folder (no run.json) nor a batch folder (no batch.json); pass the "
                         "folder that `phyt2v refine` or `phyt2v batch` printed")
    ensure_file_parent(target)
    page_dir = target.resolve().parent
    text = batch_page(p.resolve(), page_dir) if is_batch else run_page(p.resolve(), page_dir)
    atomic_write_text(target, text)
    return target


__all__ = ["write_report", "word_diff"]
