"""``phyt2v score VIDEO... --prompt TEXT | --prompts FILE [--scorer videocon|videophy2|videoscore2|vlm-judge|a,b,c]``.

Prints a table and writes CSV/JSONL rows (path, prompt, SA, PC, rule when asked, error) as each
video finishes. A bad video gets its own error line; the others are still scored. Several scorers
(``--scorer a,b,c``, or a scorer list in the config) score each video in one pass: each scorer's
columns side by side, then the combination (``score_rows.py``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import InputError
from ..store.paths import ensure_file_parent
from .options import ConfigOpt, PresetOpt, SetOpt, out_opt


class RowWriter:
    """Appends one row per finished video to a .csv or .jsonl file, flushed each time."""

    def __init__(self, path: Path, columns: list[str]):
        if path.suffix.lower() not in (".csv", ".jsonl"):
            raise InputError(f"--out {path}: use a .csv or .jsonl file name")
        ensure_file_parent(path)
        self.path, self.columns = path, columns
        try:
            self.fh = path.open("w", encoding="utf-8", newline="")
        except OSError as err:
            raise InputError(f"--out {path}: cannot write ({err.strerror or err}); pass another file name") from None
        self.csv = None
        if path.suffix.lower() == ".csv":
            self.csv = csv.DictWriter(self.fh, fieldnames=columns, extrasaction="ignore")
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        if self.csv is not None:
            self.csv.writerow(clean)
        else:
            self.fh.write(json.dumps(clean, ensure_ascii=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        videos: Optional[list[Path]] = typer.Argument(None, help="video files (mp4)", show_default=False),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="the text every video is scored against"),
        prompts: Optional[Path] = typer.Option(None, "--prompts", help="prompts file: .txt (one per video, in "
                                               "order), .csv or .jsonl (prompt|caption, video, rule columns)"),
        scorer: Optional[str] = typer.Option(None, "--scorer", help="videocon | videophy2 | videoscore2 | vlm-judge "
                                             "(or a plugin); several, comma-separated, score each video in one pass "
                                             "(default: the config's scorer)"),
        out: Optional[Path] = out_opt("also write rows to FILE.csv or FILE.jsonl"),
        rule: Optional[str] = typer.Option(None, "--rule", help="videophy2: also judge this physical rule "
                                           "(0 violated, 1 followed, 2 cannot tell); a 'rule' column sets one per "
                                           "video"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="videos per forward pass"),
        preset: Optional[str] = PresetOpt,
        config: Optional[Path] = ConfigOpt,
        sets: Optional[list[str]] = SetOpt,
    ) -> int:
        """Score videos for semantic adherence (SA) and physical commonsense (PC), with one scorer or several."""
        from .. import registry
        from ..batch.prompt_files import match_items
        from ..config import load_config
        from ..config.ensemble import is_ensemble, labels, parse_scorer_list
        from ..scorers.many import score_videos
        from . import score_rows
        from .options import ScrubbedConsole

        items = match_items(list(videos or []), prompt, prompts, rule)
        names = parse_scorer_list(scorer) if scorer is not None else []
        overrides = list(sets or []) + ([f"scorer.backend={names[0]}"] if len(names) == 1 else [])
        if batch_size is not None:
            overrides.append(f"scorer.batch_size={batch_size}")
        several = {"scorer": {"ensemble": [{"backend": n} for n in names]}} if len(names) > 1 else {}
        cfg = load_config(preset, file=config, overrides=overrides, **several)  # members inherit the section's settings
        ensemble = is_ensemble(cfg.scorer)
        by_label = dict(zip(labels(cfg.scorer), (m.backend for m in cfg.scorer.ensemble))) if ensemble else \
            {"scorer": cfg.scorer.backend}
        asked_rule = any(it[2] for it in items)
        if asked_rule and "videophy2" not in by_label.values():
            raise InputError(f"--rule is a VideoPhy-2 AutoEval task; use --scorer videophy2 (got "
                             f"{'+'.join(by_label.values())})")
        ranked = ensemble and cfg.loop.combine == "rank"
        writer = RowWriter(out, score_rows.columns(by_label, asked_rule, ranked)) if out else None
        console, errc = ScrubbedConsole(), ScrubbedConsole(stderr=True)
        rows: list[dict[str, Any] | None] = [None] * len(items)
        name = "+".join(by_label.values())

        def on_result(i: int, res) -> None:
            rows[i] = score_rows.ensemble_row(res, cfg.loop) if ensemble else res.row()
            if writer and not ranked:
                writer.write(rows[i])
            if not res.ok:
                errc.print(f"[red]failed[/red] {res.video}: {res.error}", highlight=False, soft_wrap=True)

        try:
            with console.status(f"loading scorer {name}..."):
                backend = registry.build("scorer", cfg)
            if ensemble:  # one pass: each chunk of videos through every scorer, each file decoded once per size
                backend.score_many(items, batch_size=cfg.scorer.batch_size, on_result=on_result)
            else:
                score_videos(backend, items, batch_size=cfg.scorer.batch_size, on_result=on_result)
            if ranked:  # ranks need every video: the rows are written at the end
                score_rows.add_ranks(rows, list(by_label))
                for row in rows:
                    if writer and row is not None:
                        writer.write(row)
        finally:
            if writer:
                writer.close()
        console.print(score_rows.table(rows, by_label, asked_rule, ranked))
        failed = sum(1 for r in rows if r and r["error"])
        tail = f" -> {out}" if out else ""
        console.print(f"scored {len(items) - failed}/{len(items)} videos with {name}{tail}", highlight=False)
        if failed:
            raise typer.Exit(code=1)
        return 0
