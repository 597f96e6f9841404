"""``phyt2v reproduce TABLE [--preset P | --config F] [--set ...] [--limit N] [--out DIR] [--yes] [--json]``.

One command from a paper's table to our numbers beside it: the table's benchmark is run or resumed exactly as
``phyt2v batch`` runs it (same batch folder under ``--out``), scored exactly as ``phyt2v metrics`` scores it,
and printed as paper / ours / difference per row. Before any model loads it prints the estimated GPU-hours
(``runtime/costs.py``) and asks for confirmation unless ``--yes``. Tables and sources: ``views/papers.py``.

Exit codes: 0 done, 1 some prompts failed (the table covers the finished ones) or the user declined, 2 bad input
(including no --yes without a terminal to ask on), 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import InputError
from .options import ConfigOpt, PresetOpt, RoundsOpt, SetOpt, build_config, err, json_opt, out, out_opt

PHYGEN_STEPS = (
    "PhyGenBench's score needs PhyGenEval's per-prompt judgments (VQAScore, GPT-4o, LLaVA-Interleave, "
    "InternVideo2), which phyt2v cannot compute offline. Next:",
    "  1. git clone https://github.com/OpenGVLab/PhyGenBench and set up its environments (its README, Quick Start).",
    "  2. Copy each exported folder below into PhyGenBench/PhyVideos/ (videos are output_video_<i>.mp4, i = the "
    "prompt's 1-based position in prompts.json; PhyGenEval expects all 160).",
    "  3. For each folder, set `modelname` to the folder's name in the stage scripts and PhyGenEval/overall.py, run "
    "the three stages (single, multi, video), then overall.py: it writes result/<folder>.json.",
    "  4. Feed the results back: phyt2v reproduce phygenbench <the same options> --results first=result/<round-1 "
    "folder>.json --results best=result/<best folder>.json   (or: phyt2v metrics phygenbench result/<folder>.json)",
)


def _fmt(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def render(report: dict[str, Any]):
    """The paper / ours / difference table (rich)."""
    from rich.table import Table

    ours = "ours (MEANINGLESS)" if report["meaningless"] else "ours"
    t = Table("row", "paper column", "ours from",
              title=f"{report['table']}: {report['paper_model'] or 'paper'} vs ours")
    for h in ("n", "paper", ours, "diff"):
        t.add_column(h, justify="right")
    for line in report["rows"]:
        if line["paper"] is None and line["ours"] is None:
            continue  # neither: a category none of the selected prompts has (kept in --json)
        mark = "" if line["verified"] in (True, None) else " *"
        which = "round 1" if line["ours_round"] == "first" else f"best of {report['rounds']}"
        t.add_row(line["row"], line["column"], which, "-" if line["n"] is None else str(line["n"]),
                  _fmt(line["paper"]) + mark, _fmt(line["ours"]), _fmt(line["diff"], signed=True))
    return t


def print_report(report: dict[str, Any]) -> None:
    out.print(render(report))
    if any(line["verified"] is False for line in report["rows"]):
        out.print("* unverified: second-hand, not read in the paper itself (see --json for each source)",
                  highlight=False, soft_wrap=True)
    for note in report["notes"]:
        out.print(note, highlight=False, soft_wrap=True)


def _header(spec: Any, cfg: Any, implied: bool, rounds_given: bool) -> list[str]:
    preset = cfg.preset or "(config file)"
    rounds = (f"{cfg.loop.max_rounds}" + (" (the table's)" if spec.rounds and not rounds_given else "")
              + f", best of up to {cfg.loop.max_rounds} returned")
    return [f"{spec.name}: {spec.title}", f"paper: {spec.paper}",
            f"benchmark: {spec.benchmark}; preset: {preset}" + (" (implied by the table)" if implied else "")
            + f"; generator: {cfg.generator.model}; scorer: {cfg.scorer.backend}; rounds: {rounds}",
            f"metric: {spec.mapping}"]


def _confirm(estimate: Any, yes: bool) -> None:
    if yes or estimate.prompts == 0:
        return
    if not sys.stdin.isatty():
        raise InputError(f"reproduce would run {estimate.prompts} prompt(s) (estimate above) and stdin is not a "
                         "terminal to ask on: pass --yes to start")
    if not typer.confirm("Start?", default=False, err=True):
        err.print("not started", highlight=False)
        raise typer.Exit(1)


def _scorer_check(spec: Any, cfg: Any) -> list[str]:
    if spec.scorer is None or cfg.scorer.backend == spec.scorer:
        return []
    if spec.kind == "videophy2":
        raise InputError(f"{spec.name} scores with VideoPhy-2 AutoEval's 1..5 ratings, but this config's scorer is "
                         f"{cfg.scorer.backend}: add --set scorer.backend=videophy2 --set "
                         "scorer.model=videophysics/videophy_2_auto (or drop --preset/--config to use the table's)")
    return [f"the paper scored with {spec.scorer}; this run scores with {cfg.scorer.backend}: the metric differs"]


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce(
        table: str = typer.Argument(..., help="phyt2v-table1 | phygdpo-videophy2 | phygenbench"),
        preset: Optional[str] = PresetOpt,
        config: Optional[Path] = ConfigOpt,
        sets: Optional[list[str]] = SetOpt,
        rounds: Optional[int] = RoundsOpt,
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="only the first N prompts"),
        from_file: Optional[Path] = typer.Option(None, "--from", help="read the benchmark's prompts from this local "
                                                 "file (same format as upstream) instead of downloading them"),
        out_dir: Optional[Path] = out_opt("parent folder of batch folders (default ./runs), as `phyt2v batch`"),
        results: Optional[list[str]] = typer.Option(None, "--results", help="phygenbench: PhyGenEval's result "
                                                    "JSON, as first=FILE and/or best=FILE (a bare FILE: best)"),
        yes: bool = typer.Option(False, "--yes", "-y", help="start without asking (the estimate is still printed)"),
        as_json: bool = json_opt("print the comparison as JSON only (paper numbers with their sources)"),
    ) -> None:
        """A paper's table beside ours: run or resume its benchmark batch, score it, print paper / ours / diff."""
        from ..batch.runner import Batch
        from ..batch.sources import load_source
        from ..runtime.costs import estimate
        from ..store.paths import ensure_dir
        from ..views import reproduce as R
        from .batch import run_batch, summary_lines

        spec = R.table_named(table)
        if results and spec.kind != "phygenbench":
            raise InputError(f"--results applies to phygenbench (PhyGenEval's result files), not {spec.name}")
        result_files = R.parse_results(results)
        implied = preset is None and config is None
        cfg = build_config(spec.preset if implied else preset, config, [*(spec.sets if implied else ()), *(sets or [])],
                           rounds=rounds or spec.rounds, out_dir=out_dir, command="reproduce")
        notes = _scorer_check(spec, cfg)
        if spec.rounds and cfg.loop.max_rounds != spec.rounds:
            notes.append(f"the paper ran {spec.rounds} rounds; this run runs at most {cfg.loop.max_rounds}")
        src = load_source(spec.benchmark, from_file=from_file)
        ensure_dir(cfg.out)
        preview = Batch(src, cfg, limit=limit)   # nothing loads: the folder and the prompts left to run
        done = preview.done_ids() if preview.dir.is_dir() else set()
        est = estimate(cfg, sum(1 for it in preview.items if it.id not in done))
        meaningless = cfg.generator.model.startswith("tiny")
        for line in [*_header(spec, cfg, implied, rounds is not None), f"estimate: {est.line()}"]:
            err.print(line, highlight=False, soft_wrap=True)
        for line in ([R.MEANINGLESS] if meaningless else []) + notes:
            err.print(f"[yellow]{line}[/yellow]", highlight=False, soft_wrap=True)
        _confirm(est, yes)

        b, summary = run_batch(src, cfg, limit=limit)
        for line in summary_lines(summary):
            err.print(line, highlight=False, soft_wrap=True)
        if summary.interrupted:
            err.print("[red]interrupted[/red]: finished prompts and steps are saved; run the same command again to "
                      "resume", highlight=False)
            raise typer.Exit(130)

        model, warnings = R.paper_row_of(spec, cfg.generator.model)
        report: dict[str, Any] = {"table": spec.name, "paper_table": spec.as_dict(), "paper_model": model,
                                  "preset": cfg.preset, "preset_implied": implied, "rounds": cfg.loop.max_rounds,
                                  "generator": cfg.generator.model, "scorer": cfg.scorer.backend,
                                  "meaningless": meaningless, "estimate": est.as_dict(), "batch": str(b.dir),
                                  "n_failed": len(summary.failed)}
        if meaningless:
            notes.insert(0, R.MEANINGLESS)
        if spec.missing:
            notes.append(f"paper numbers: {spec.missing}")
        notes += warnings
        if spec.kind == "phygenbench":
            report.update(_phygen(R, spec, b, model, result_files, notes))
        else:
            metrics, rows = R.batch_comparison(spec, b.dir, model)
            report.update({"metrics": metrics, "rows": rows})
            notes += metrics["warnings"]
        report["notes"] = notes
        if as_json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            print_report(report)
        if summary.failed:
            err.print(f"[red]{len(summary.failed)} prompt(s) failed[/red]: the table covers the finished ones; run "
                      "the same command again to retry them", highlight=False)
            raise typer.Exit(1)


def _phygen(R: Any, spec: Any, b: Any, model: str | None, files: dict[str, Path], notes: list[str]) -> dict:
    """PhyGenBench: export round 1 and the best round for PhyGenEval; compare when its results are given."""
    from ..store.files import slugify
    from ..views.export import export

    base = f"phyt2v-{slugify(b.config.generator.model.split('/')[-1], 40)}"
    exports = {w: export(b.dir, "phygenbench", which=w, name=f"{base}-{'round1' if w == 'first' else 'best'}")
               for w in ("first", "best")}
    folders = {w: str(e.path) for w, e in exports.items()}
    if files:
        metrics, rows = R.phygen_comparison(spec, files, model)
        return {"status": "compared", "exports": folders, "metrics": metrics, "rows": rows}
    notes += [*PHYGEN_STEPS, *(f"  export ({R.PHYGEN_ROUNDS[w]}): {f}" for w, f in folders.items())]
    rows = R.compare(spec, model, {}, R.columns_for(spec, ["first", "best"]))
    return {"status": "needs PhyGenEval results (--results)", "exports": folders, "rows": rows,
            "next": list(PHYGEN_STEPS)}
