"""``phyt2v batch SOURCE [--from FILE] [--limit N] [--shard i/n] [--concurrency K] [--out DIR] [refine options]``.

Exit codes: 0 when every selected prompt finished, 1 when some failed (their errors are in the results
file; rerunning retries them), 130 after Ctrl-C (rerunning resumes), 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import InputError
from ..store.paths import ensure_dir
from .options import (
    ConfigOpt,
    DraftOpt,
    PresetOpt,
    RoundsOpt,
    SeedOpt,
    SeedsOpt,
    SetOpt,
    ThresholdOpt,
    build_config,
    err,
    out,
    out_opt,
)


def summary_lines(s: Any) -> list[str]:
    lines = [f"{s.mine} prompt(s) in this {'shard' if s.mine != s.total else 'batch'}: "
             f"{s.already_done} already done, {s.finished} finished now, {len(s.failed)} failed"
             + (f", {s.by_others} done by other processes" if s.by_others else "")
             + (f"; {s.filtered} skipped by --min-physics" if s.filtered else "")
             + (" (interrupted)" if s.interrupted else "") + f"; {s.wall_s:.1f} s"]
    for line in s.failed[:5]:
        e = line.get("error") or {}
        lines.append(f"  failed {line['id']} at {e.get('step') or '?'}: {e.get('message', '')[:200]}")
    if len(s.failed) > 5:
        lines.append(f"  ... and {len(s.failed) - 5} more (see the results file)")
    return lines


def run_batch(src: Any, cfg: Any, *, limit: int | None = None, shard: Any = None, concurrency: int | None = None,
              label: str = "", max_cost: float | None = None) -> tuple[Any, Any]:
    """Run or resume ``src`` under ``cfg`` with the progress display: (the Batch, its BatchSummary)."""
    from ..batch.runner import Batch
    from ..loop.refiner import Refiner
    from .progress import BatchProgress

    with BatchProgress(err, cfg, label=label) as prog:
        b = Batch(src, cfg, limit=limit, shard=shard, refiner=Refiner(cfg, on_event=prog.on_refine_event),
                  concurrency=concurrency, on_event=prog.on_batch_event, max_cost=max_cost)
        return b, b.run()


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        source: str = typer.Argument(..., help="videophy | videophy2 | phygenbench | lvd, or a .txt/.csv/.jsonl file"),
        from_file: Optional[Path] = typer.Option(None, "--from", help="read a named benchmark from this local "
                                                 "file (same format as upstream) instead of downloading it"),
        column: Optional[str] = typer.Option(None, "--column", help="CSV/JSONL prompt column (default: prompt, "
                                             "caption or text)"),
        caption: str = typer.Option("caption", "--caption", help="videophy2: caption | upsampled (which text "
                                    "is the prompt)"),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="skip malformed rows (listed) instead of stopping"),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="only the first N prompts"),
        shard: Optional[str] = typer.Option(None, "--shard", help="run shard i of n (i/n, from 0); under "
                                            "accelerate launch / torchrun the process rank is used"),
        min_physics: Optional[float] = typer.Option(None, "--min-physics", min=0.0, max=1.0, help="run the loop "
                                                    "only on prompts whose PhyGDPO physics-richness score is at "
                                                    "least this (0.6: its 'physical' label; loop.min_physics)"),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1, help="prompts in flight: "
                                                  "their GPU steps run one at a time while others wait on the LLM "
                                                  "(default: 4 with a remote LLM, 1 with a local one)"),
        max_cost: Optional[float] = typer.Option(None, "--max-cost", min=0.0, help="served generator: start no "
                                                 "video job that would take the batch's spend (recorded in its runs, "
                                                 "at generator.price_per_second) past this many USD"),
        out_dir: Optional[Path] = out_opt("parent folder of batch folders (default ./runs)"),
        preset: Optional[str] = PresetOpt,
        config: Optional[Path] = ConfigOpt,
        rounds: Optional[int] = RoundsOpt,
        threshold: Optional[float] = ThresholdOpt,
        seed: Optional[int] = SeedOpt,
        seeds: Optional[int] = SeedsOpt,
        draft: Optional[bool] = DraftOpt,
        sets: Optional[list[str]] = SetOpt,
    ) -> None:
        """Run the refine loop over every prompt of SOURCE; resumable (rerun the same command), shardable."""
        from ..batch.shards import distributed_shard, launched_world_size, parse_shard
        from ..batch.sources import load_source

        if min_physics is not None:
            sets = [*(sets or []), f"loop.min_physics={min_physics}"]
        cfg = build_config(preset, config, sets, rounds=rounds, threshold=threshold, seed=seed, seeds=seeds,
                       draft=draft, out_dir=out_dir)
        ensure_dir(cfg.out)
        src = load_source(source, from_file=from_file, column=column, caption=caption, skip_bad=skip_bad)
        for msg in src.skipped[:20]:
            err.print(f"[yellow]skipped[/yellow] {msg}", highlight=False)
        if len(src.skipped) > 20:
            err.print(f"[yellow]skipped {len(src.skipped) - 20} more malformed rows[/yellow]")
        state = None
        if shard is not None:
            if launched_world_size() > 1:
                raise InputError("--shard and a multi-process launch both split the prompts; use one of them")
            sh = parse_shard(shard)
        elif launched_world_size() > 1:
            sh, state = distributed_shard()
        else:
            sh = None
        if cfg.generator.model.startswith("tiny") and (state is None or state.is_main_process):
            err.print("[yellow]smoke preset: tiny random-weight models, the scores are meaningless.[/yellow]")
        label = f"[{sh}] " if sh is not None and sh.count > 1 else ""
        b, summary = run_batch(src, cfg, limit=limit, shard=sh, concurrency=concurrency, label=label,
                               max_cost=max_cost)
        # No barrier: shards can finish hours apart (a collective would time out, and spin meanwhile).
        # Each shard tries the merge when it ends; the last one to finish finds every line and writes it.
        for line in summary_lines(summary):
            err.print(line, highlight=False, soft_wrap=True)
        if summary.merged:
            out.print(f"results: {b.dir / 'results.jsonl'}", soft_wrap=True, highlight=False)
            out.print(f"next: phyt2v metrics auto {b.dir}  |  phyt2v report {b.dir}", soft_wrap=True,
                      highlight=False)
        elif not summary.interrupted:
            out.print(f"shard results: {summary.results_file} (merged into results.jsonl by the last shard to "
                      "finish; or rerun without --shard once all are done)", soft_wrap=True, highlight=False)
        if summary.budget_stop:
            err.print(f"[red]--max-cost reached[/red]: {summary.budget_stop}; the prompts not finished are left "
                      "unstarted or stopped before their next video. Finished steps are saved: run again with a "
                      "larger --max-cost to resume", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        if summary.interrupted:
            err.print("[red]interrupted[/red]: finished prompts and steps are saved; run the same command "
                      "again to resume", highlight=False)
            raise typer.Exit(130)
        if summary.failed:
            err.print(f"[red]{len(summary.failed)} prompt(s) failed[/red]; run the same command again to retry "
                      "them (finished prompts are not rerun)", highlight=False)
            raise typer.Exit(1)
