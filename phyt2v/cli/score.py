"""``phyt2v score VIDEO... --prompt TEXT | --prompts FILE --scorer videocon|videophy2|vlm-judge``.

Prints a table and writes CSV/JSONL rows (path, prompt, SA, PC, rule when asked, error) as each
video finishes. A bad video gets its own error line; the others are still scored.
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

_EXTRA_COLUMNS = {
    "videocon": ["sa_pass", "pc_pass", "truncated"],
    "videophy2": ["sa_rating", "pc_rating", "rule_rating", "unparseable"],
}


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


def _cell(row: dict[str, Any], key: str) -> str:
    rating = row.get(f"{key}_rating", "absent")
    if rating != "absent":
        return "unparseable" if rating is None else str(rating)
    value = row.get(key)
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        videos: Optional[list[Path]] = typer.Argument(None, help="video files (mp4)", show_default=False),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="the text every video is scored against"),
        prompts: Optional[Path] = typer.Option(None, "--prompts", help="prompts file: .txt (one per video, in "
                                               "order), .csv or .jsonl (prompt|caption, video, rule columns)"),
        scorer: str = typer.Option("videocon", "--scorer", help="videocon | videophy2 | vlm-judge (or a plugin)"),
        out: Optional[Path] = out_opt("also write rows to FILE.csv or FILE.jsonl"),
        rule: Optional[str] = typer.Option(None, "--rule", help="videophy2: also judge this physical rule "
                                           "(0 violated, 1 followed, 2 cannot tell); a 'rule' column sets one per video"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="videos per forward pass"),
        preset: Optional[str] = PresetOpt,
        config: Optional[Path] = ConfigOpt,
        sets: Optional[list[str]] = SetOpt,
    ) -> int:
        """Score videos for semantic adherence (SA) and physical commonsense (PC)."""
        from rich.table import Table

        from .. import registry
        from ..batch.prompt_files import match_items
        from ..config import load_config
        from ..scorers.many import score_videos
        from .options import ScrubbedConsole

        items = match_items(list(videos or []), prompt, prompts, rule)
        asked_rule = any(it[2] for it in items)
        if asked_rule and scorer != "videophy2":
            raise InputError(f"--rule is a VideoPhy-2 AutoEval task; use --scorer videophy2 (got {scorer})")
        overrides = list(sets or []) + [f"scorer.backend={scorer}"]
        if batch_size is not None:
            overrides.append(f"scorer.batch_size={batch_size}")
        cfg = load_config(preset, file=config, overrides=overrides)
        columns = ["path", "prompt", "sa", "pc"] + (["rule"] if asked_rule else [])
        columns += [c for c in _EXTRA_COLUMNS.get(scorer, []) if asked_rule or c != "rule_rating"] + ["error"]
        writer = RowWriter(out, columns) if out else None
        console, errc = ScrubbedConsole(), ScrubbedConsole(stderr=True)
        rows: list[dict[str, Any] | None] = [None] * len(items)

        def on_result(i: int, res) -> None:
            rows[i] = res.row()
            if writer:
                writer.write(rows[i])
            if not res.ok:
                errc.print(f"[red]failed[/red] {res.video}: {res.error}", highlight=False, soft_wrap=True)

        try:
            with console.status(f"loading scorer {scorer}..."):
                backend = registry.build("scorer", cfg)
            score_videos(backend, items, batch_size=cfg.scorer.batch_size, on_result=on_result)
        finally:
            if writer:
                writer.close()
        table = Table("video", "SA", "PC", *(["rule"] if asked_rule else []), "status")
        for row in rows:
            if row is None:
                continue
            ok = not row["error"]
            cells = [Path(row["path"]).name, _cell(row, "sa") if ok else "-", _cell(row, "pc") if ok else "-"]
            if asked_rule:
                cells.append(_cell({"rule_rating": row.get("rule_rating")}, "rule") if ok and row.get("rule") else "-")
            cells.append("[green]ok[/green]" if not row["error"] else "[red]error[/red]")
            table.add_row(*cells)
        console.print(table)
        failed = sum(1 for r in rows if r and r["error"])
        tail = f" -> {out}" if out else ""
        console.print(f"scored {len(items) - failed}/{len(items)} videos with {scorer}{tail}", highlight=False)
        if failed:
            raise typer.Exit(code=1)
        return 0
