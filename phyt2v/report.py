"""``phyt2v report``: one self-contained HTML page for a run or a batch directory.

The page has inline CSS, JS and SVG and makes no network request; videos are linked by paths relative to
the page, so it works opened from ``file://`` as long as it stays where it was written (by default
``report.html`` inside the run or batch directory). All user and model text is HTML-escaped.
"""

from __future__ import annotations

import difflib
import html
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import batchdir
from .errors import InputError, first_line
from .paths import ensure_file_parent
from .record import atomic_write_text
from .schemas import RoundRecord, RoundScores, RunRecord, StepError

REPORT_NAME = "report.html"
SERIES = (("sa", "SA", "#2563eb"), ("pc", "PC", "#d97706"), ("score", "score", "#059669"))
METRIC_ORDER = ("n", "sa", "pc", "joint", "score", "sa_mean", "pc_mean")
METRIC_LABELS = {"n": "n", "sa": "SA", "pc": "PC", "joint": "SA & PC", "score": "score",
                 "sa_mean": "SA mean", "pc_mean": "PC mean"}

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1em 1.5em;max-width:1600px;color:#1f2937}
h1{font-size:1.35em;margin:.2em 0 .5em}h2{font-size:1.15em;margin:1.6em 0 .4em}h3{font-size:1em;margin:0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d1d5db;padding:.25em .55em;vertical-align:top}
th{background:#f3f4f6;text-align:left;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em}
dl.meta dt{color:#6b7280}dl.meta dd{margin:0}.note{color:#6b7280;font-size:.9em}
.error{background:#fef2f2;border:1px solid #dc2626;color:#991b1b;padding:.5em .8em;border-radius:4px;margin:.5em 0}
.status-failed,.status-interrupted{color:#dc2626;font-weight:600}.status-finished{color:#059669;font-weight:600}
.rounds{display:flex;gap:1em;overflow-x:auto;padding-bottom:.6em;align-items:flex-start}
.card{flex:0 0 330px;border:1px solid #d1d5db;border-radius:6px;padding:.6em;background:#fff}
.card.best{border:2px solid #059669}
.badge{background:#059669;color:#fff;border-radius:3px;padding:0 .4em;font-size:.8em}
.card video,.novideo{width:100%;aspect-ratio:3/2;background:#111;image-rendering:pixelated;margin:.4em 0;display:block}
.novideo{color:#ccc;display:flex;align-items:center;justify-content:center;font-size:.9em}
.scores{font-variant-numeric:tabular-nums;font-weight:600}.label{color:#6b7280;font-size:.85em;margin-top:.5em}
.prompt{background:#f9fafb;padding:.3em .5em;border-radius:4px;margin:.2em 0}
ins{background:#bbf7d0;text-decoration:none}del{background:#fecaca;color:#7f1d1d}
.scroll{overflow-x:auto}ul{margin:.2em 0;padding-left:1.2em}pre{white-space:pre-wrap;font-size:.85em}
.chart{margin:.5em 0 0}button.play-all{margin:.6em 0}
.chart text{font-size:11px;fill:#4b5563}.legend span{margin-right:1em;font-weight:600}
section.prompt-run{border-top:2px solid #e5e7eb;margin-top:1.5em}.chip{background:#e5e7eb;border-radius:3px;
padding:0 .35em;margin-right:.3em;font-size:.85em;white-space:nowrap}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      var key = function (r) { var c = r.cells[col]; return c ? (c.dataset.sort || c.textContent) : ''; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
        return dir * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('button.play-all').forEach(function (b) {
  b.addEventListener('click', function () {
    var vids = b.closest('.run').querySelectorAll('video'), play = b.textContent.indexOf('play') === 0;
    vids.forEach(function (v) { if (play) { v.currentTime = 0; v.play().catch(function () {}); } else v.pause(); });
    b.textContent = play ? 'pause all videos' : 'play all videos';
  });
});
document.body.dataset.ready = '1';
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def num(v: Any, signed: bool = False) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "–" if v is None else esc(v)
    if isinstance(v, int):
        return f"{v:+d}" if signed else str(v)
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def word_diff(old: str | None, new: str) -> str:
    """``new`` as HTML, with the words changed since ``old`` in ``<ins>``/``<del>``."""
    if old is None or old == new:
        return esc(new)
    a, b = old.split(), new.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(esc(" ".join(b[j1:j2])))
            continue
        if i2 > i1:
            out.append(f"<del>{esc(' '.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{esc(' '.join(b[j1:j2]))}</ins>")
    return " ".join(out)


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


def record_from_line(line: dict[str, Any], run_dir: Path, batch_dir: Path) -> RunRecord:
    """A run rebuilt from its batch result line alone (its run.json is missing or unreadable)."""
    rounds = [RoundRecord(index=r["index"], prompt=r.get("prompt") or "", caption=r.get("caption"),
                          video=os.path.relpath(batch_dir / r["video"], run_dir) if r.get("video") else None,
                          scores=RoundScores(**{k: r[k] for k in ("sa", "pc", "score")}, extra=r.get("extra") or {})
                          if r.get("score") is not None else None) for r in line.get("rounds") or []]
    err = line.get("error")
    return RunRecord(run_id=str(line.get("run_id")), prompt=line.get("prompt") or "", config_hash="",
                     status=line.get("status") if line.get("status") in ("finished", "failed") else "running",
                     rounds=rounds, best_round=line.get("best_round"), stop_reason=line.get("stop_reason"),
                     error=step_error(err) if err else None)


# ---------------------------------------------------------------- rendering

def chart_svg(rounds: list[RoundRecord], best: int | None, prefix: str) -> str:
    """Scores per round (y from 0 to 1), best round marked; each point links to its round card."""
    if not any(r.scores for r in rounds):
        return '<p class="note">no scored round yet</p>'
    w, h, left, right, top, bottom = 440, 190, 36, 36, 14, 28
    ks = [r.index for r in rounds]
    lo, hi = min(ks), max(ks)

    def x(k: int) -> float:
        return left + (w - left - right) * (k - lo) / (hi - lo) if hi > lo else (left + w - right) / 2

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - max(0.0, min(1.0, v)))

    parts = [f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             f'aria-label="scores per round">']
    for g in (0, .25, .5, .75, 1):
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(g):.1f}" y2="{y(g):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 4}" y="{y(g) + 4:.1f}" text-anchor="end">{g:g}</text>')
    parts += [f'<text x="{x(k):.1f}" y="{h - 10}" text-anchor="middle">round {k}</text>' for k in ks]
    if best in ks:
        parts.append(f'<line class="best-mark" x1="{x(best):.1f}" x2="{x(best):.1f}" y1="{top - 4}" '
                     f'y2="{h - bottom}" stroke="#059669" stroke-dasharray="4 3"/>'
                     f'<text x="{x(best) + 3:.1f}" y="{top - 3}" fill="#059669">best</text>')
    for key, label, color in SERIES:
        pts = [(r.index, getattr(r.scores, key)) for r in rounds if r.scores]
        if len(pts) > 1:
            xy = " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in pts)
            parts.append(f'<polyline class="series-{key}" points="{xy}" fill="none" stroke="{color}" '
                         'stroke-width="2"/>')
        parts += [f'<a href="#{prefix}r{k}"><circle cx="{x(k):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}">'
                  f'<title>round {k} {label} {v:.3f}</title></circle></a>' for k, v in pts]
    legend = "".join(f'<span style="color:{c}">— {lab}</span>' for _, lab, c in SERIES)
    return "".join(parts) + f'</svg><div class="legend">{legend}</div>'


def error_html(err: StepError | None) -> str:
    if err is None:
        return ""
    step = f" at step <b>{esc(err.step)}</b>" if err.step else ""
    s = f'<div class="error">failed{step}: {esc(err.kind)}: {esc(err.message)}'
    if err.expected:
        s += f'<div>expected fields: {esc(", ".join(err.expected))}</div>'
    if err.raw:
        s += f'<details><summary>raw model output</summary><pre>{esc(err.raw)}</pre></details>'
    return s + "</div>"


def card_html(r: RoundRecord, prev: str | None, best: int | None, run_dir: Path, page_dir: Path, prefix: str) -> str:
    k, is_best = r.index, r.index == best
    s = [f'<div class="card{" best" if is_best else ""}" id="{prefix}r{k}"><h3>Round {k} '
         f'{"<span class=badge>best</span>" if is_best else ""}</h3>']
    v = run_dir / r.video if r.video else None
    if v is not None and v.is_file():
        s.append(f'<video controls muted loop playsinline preload="metadata" '
                 f'src="{esc(rel_url(v, page_dir))}"></video>')
    else:
        s.append(f'<div class="novideo">{"video not found: " + esc(r.video) if r.video else "no video"}</div>')
    if r.scores:
        s.append('<div class="scores">' + " · ".join(f"{lab} {num(getattr(r.scores, key))}" for key, lab, _ in SERIES)
                 + '</div><div class="note">' + ", ".join(f"{esc(a)} {num(b)}" for a, b in r.scores.extra.items())
                 + "</div>")
    else:
        s.append('<div class="note">not scored</div>')
    tokens = f" · {r.prompt_tokens} tokens" if r.prompt_tokens is not None else ""
    tokens += " (over the token budget)" if r.over_budget else ""
    s.append(f'<div class="label">prompt{f" (changes from round {k - 1})" if prev else ""}{tokens}</div>'
             f'<div class="prompt">{word_diff(prev, r.prompt)}</div>')
    if r.caption is not None:
        s.append(f'<div class="label">caption</div><div>{esc(r.caption)}</div>')
    if r.mismatch is not None:
        items = "".join(f"<li>{esc(m)}</li>" for m in r.mismatch.mismatches) or "<li><i>none</i></li>"
        s.append(f'<div class="label">mismatches</div><ul class="mismatches">{items}</ul>'
                 f'<details><summary>mismatch reasoning</summary>{esc(r.mismatch.reasoning)}</details>')
    if r.refinement is not None:
        s.append(f'<details><summary>step-back principle</summary>{esc(r.refinement.principle)}</details>')
    if r.timings:
        s.append('<div class="note">' + " · ".join(f"{esc(a.removesuffix('_s'))} {b:.2f} s"
                                                   for a, b in r.timings.items()) + "</div>")
    return "".join(s) + "</div>"


def run_html(rec: RunRecord, run_dir: Path, page_dir: Path, prefix: str) -> str:
    """Facts, the error if any, the chart and the row of round cards of one run."""
    facts = [("status", f'<span class="status-{esc(rec.status)}">{esc(rec.status)}</span>'),
             ("best round", esc(rec.best_round or "–")), ("stop reason", esc(rec.stop_reason or "–")),
             ("rounds", str(len(rec.rounds)))]
    facts += [(f"{esc(role)} model", esc(m)) for role, m in rec.models.items()] + [("run", esc(rec.run_id))]
    s = ['<div class="run"><dl class="meta">', "".join(f"<dt>{a}</dt><dd>{b}</dd>" for a, b in facts), "</dl>",
         error_html(rec.error)]
    if rec.rules:
        items = "".join(f"<li>{esc(x)}</li>" for x in rec.rules.rules)
        s.append(f'<details><summary>physical rules</summary><div>objects: {esc(", ".join(rec.rules.objects))}</div>'
                 f'<ul>{items}</ul><div>expected: {esc(rec.rules.expected_outcome)}</div></details>')
    s.append(chart_svg(rec.rounds, rec.best_round, prefix))
    if any(r.video for r in rec.rounds):
        s.append('<button class="play-all" type="button">play all videos</button>')
    prevs = [None] + [r.prompt for r in rec.rounds]
    cards = "".join(card_html(r, p, rec.best_round, run_dir, page_dir, prefix) for r, p in zip(rec.rounds, prevs))
    return "".join(s) + f'<div class="rounds">{cards}</div></div>'


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f'<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n<script>{JS}</script>\n'
            f'</body></html>\n')


def run_page(run_dir: Path, page_dir: Path) -> str:
    rec = load_run(run_dir)
    body = (f'<div class="note">phyt2v run report · config {esc(rec.config_hash)} · created {esc(rec.created)}'
            f' · updated {esc(rec.updated)}</div><h1 class="run-prompt">{esc(rec.prompt)}</h1>'
            + run_html(rec, run_dir, page_dir, "run-"))
    return page(f"phyt2v run: {rec.prompt}", body)


# ---------------------------------------------------------------- batch

def fallback_summary(results: dict[str, dict[str, Any]], reason: str) -> dict[str, Any]:
    """Mean SA/PC/score of the first and the best round over finished prompts, when metrics is unavailable."""
    fin = [ln for ln in results.values() if ln.get("status") == "finished"]
    tables = {}
    for which in ("first", "best"):
        rs = [r for r in (batchdir.round_of(ln, which) for ln in fin) if r is not None]
        overall = {"n": len(rs)}
        for key in ("sa", "pc", "score"):
            vals = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
            overall[key] = sum(vals) / len(vals) if vals else None
        tables[which] = {"kind": "mean", "overall": overall, "groups": {}}
    return {"kind": "mean scores", "n_finished": len(fin), "n_failed": len(results) - len(fin), "rounds": tables,
            "gain": None, "note": f"phyt2v.metrics unavailable ({reason}): plain means of the scorer's SA/PC/score"}


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


def metrics_html(summary: dict[str, Any]) -> str:
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
    head = "".join(f'<th colspan="{1 if k == "n" else 3}">{esc(METRIC_LABELS.get(k, k))}</th>' for k in keys)
    sub = "".join("<th>prompts</th>" if k == "n" else "<th>round 1</th><th>best</th><th>gain</th>" for k in keys)
    body = []
    for label, f, b, g in rows:
        cells = []
        for k in keys:
            if k == "n":
                cells.append(f'<td class="num">{num(b.get("n", f.get("n")))}</td>')
                continue
            fv, bv = f.get(k), b.get(k)
            both = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (fv, bv))
            gv = g[k] if isinstance(g, dict) and k in g else (bv - fv if both else None)
            cells.append(f'<td class="num">{num(fv)}</td><td class="num">{num(bv)}</td>'
                         f'<td class="num">{num(gv, signed=True)}</td>')
        body.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    notes = ([summary["note"]] if summary.get("note") else []) + list(summary.get("warnings") or [])
    note = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return (f'<div class="scroll"><table class="metrics"><thead><tr><th rowspan="2">{esc(summary.get("kind"))}</th>'
            f'{head}</tr>'
            f'<tr>{sub}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{note}')


def batch_page(batch_dir: Path, page_dir: Path) -> str:
    header = batchdir.read_batch(batch_dir)
    prompts = batchdir.read_prompts(batch_dir)
    results = batchdir.read_results(batch_dir)
    src = header.get("source") or {}
    items = sorted(list(results.values()) + [p for p in prompts if p.get("id") not in results],
                   key=lambda it: it.get("index") if isinstance(it.get("index"), int) else 0)
    total = header.get("selected") or len(prompts) or len(results)
    n_fin = sum(1 for ln in results.values() if ln.get("status") == "finished")
    summary = summarize(batch_dir, results)
    rows, sections = [], []
    for it in items:
        pid = str(it.get("id"))
        aid = "p-" + anchor(pid)
        status = it.get("status") or "not run"
        meta = it.get("meta") or {}
        chips = "".join(f'<span class="chip">{esc(k)}: {esc(v)}</span>' for k, v in meta.items())
        first, best = (batchdir.round_of(it, w) if it.get("rounds") else None for w in ("first", "best"))

        def pair(key: str) -> str:
            if first is None:
                return "<td>–</td>"
            return f'<td class="num" data-sort="{esc(best[key])}">{num(first[key])} → {num(best[key])}</td>'
        err = it.get("error") or {}
        err_txt = f': {esc(err.get("step"))}: {esc(err.get("message"))}' if err else ""
        link = f'<a href="#{aid}">{esc(pid)}</a>' if "status" in it else esc(pid)
        rows.append(f'<tr><td>{link}</td><td>{esc(it.get("prompt"))}</td><td>{chips}</td>{pair("sa")}{pair("pc")}'
                    f'<td><span class="status-{esc(status)}">{esc(status)}</span>{err_txt}</td></tr>')
        if "status" not in it:
            continue
        run_dir = batch_dir / (it.get("run_dir") or f"{batchdir.RUNS_DIR}/{it.get('run_id')}")
        try:
            rec = load_run(run_dir)
            if rec.error is None and err:  # the prompt failed before its run recorded why
                rec.error = step_error(err)
            run = run_html(rec, run_dir, page_dir, aid + "-")
        except InputError as e:
            try:
                run = run_html(record_from_line(it, run_dir, batch_dir), run_dir, page_dir, aid + "-")
            except (ValueError, TypeError, KeyError) as e2:
                run = f'<div class="error">{esc(e)}; its result line is unreadable too ({esc(first_line(e2))})</div>'
        sections.append(f'<section class="prompt-run" id="{aid}"><h2>{esc(pid)}: {esc(it.get("prompt"))}</h2>'
                        f'<div>{chips} <a href="#prompts">↑ all prompts</a></div>{run}</section>')
    facts = [("source", f'{esc(src.get("name"))} ({esc(src.get("kind"))})'), ("config", esc(header.get("config_hash"))),
             ("prompts", f"{n_fin} finished, {len(results) - n_fin} failed, {total} total"),
             ("updated", esc(header.get("updated")))]
    body = (f'<div class="note">phyt2v batch report · {esc(batch_dir.name)}</div>'
            f'<h1>Batch: {esc(src.get("name"))}</h1>'
            '<dl class="meta summary">' + "".join(f"<dt>{a}</dt><dd>{b}</dd>" for a, b in facts) + "</dl>"
            f'<h2>Round 1 vs best round</h2>{metrics_html(summary)}'
            '<h2 id="prompts">Prompts</h2><table class="sortable prompts"><thead><tr><th>id</th><th>prompt</th>'
            '<th>categories</th><th>SA first → best</th><th>PC first → best</th><th>status</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{"".join(sections)}')
    return page(f"phyt2v batch: {src.get('name') or batch_dir.name}", body)


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
