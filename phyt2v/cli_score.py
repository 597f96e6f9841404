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

from .errors import InputError

_EXTRA_COLUMNS = {
    "videocon": ["sa_pass", "pc_pass", "truncated"],
    "videophy2": ["sa_rating", "pc_rating", "rule_rating", "unparseable"],
}
_PROMPT_KEYS = ("prompt", "caption")
_PATH_KEYS = ("video", "videopath", "path")


def read_prompts_file(path: Path) -> list[dict[str, Any]]:
    """Rows with ``prompt`` and optional ``video`` and ``rule``, from .txt (one prompt a line),
    .csv (columns prompt|caption, video|videopath|path, rule) or .jsonl (same keys)."""
    if not path.is_file():
        raise InputError(f"prompts file not found: {path}")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".jsonl", ".json"):
        if suffix == ".csv":
            raw = list(csv.DictReader(text.splitlines()))
        else:
            try:
                raw = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line is not JSON ({e.msg}); use one JSON object per line") from None
        rows = []
        for n, r in enumerate(raw, 1):
            prompt = next((r[k] for k in _PROMPT_KEYS if r.get(k)), None)
            if prompt is None:
                raise InputError(f"{path} row {n} has no prompt; give a 'prompt' or 'caption' column")
            video = next((r[k] for k in _PATH_KEYS if r.get(k)), None)
            if video is not None and not Path(video).is_absolute():
                video = str(path.parent / video)
            rows.append({"prompt": prompt, "video": video, "rule": r.get("rule") or None})
        return rows
    return [{"prompt": line, "video": None, "rule": None} for line in text.splitlines() if line.strip()]


def match_items(videos: list[Path], prompt: str | None, prompts: Path | None, rule: str | None) -> list[tuple]:
    """(video, prompt, rule) per video from the command line arguments."""
    if prompt is not None and prompts is not None:
        raise InputError("pass either --prompt or --prompts, not both")
    if prompt is None and prompts is None:
        raise InputError("pass --prompt TEXT (one prompt for every video) or --prompts FILE")
    if prompt is not None:
        if not videos:
            raise InputError("no videos given: phyt2v score VIDEO... --prompt TEXT")
        return [(v, prompt, rule) for v in videos]
    rows = read_prompts_file(prompts)
    with_paths = [r for r in rows if r["video"]]
    if not videos:
        if len(with_paths) != len(rows) or not rows:
            raise InputError(f"{prompts} does not name a video on every row; add a 'video' column or "
                             "pass the videos on the command line")
        return [(Path(r["video"]), r["prompt"], r["rule"] or rule) for r in rows]
    if with_paths:
        by_name = {Path(r["video"]).name: r for r in with_paths}
        missing = [v.name for v in videos if v.name not in by_name]
        if missing:
            raise InputError(f"{prompts} has no row for {', '.join(missing[:3])}")
        return [(v, by_name[v.name]["prompt"], by_name[v.name]["rule"] or rule) for v in videos]
    if len(rows) != len(videos):
        raise InputError(f"{prompts} has {len(rows)} prompts for {len(videos)} videos; give one per video, in order")
    return [(v, r["prompt"], r["rule"] or rule) for v, r in zip(videos, rows)]


class RowWriter:
    """Appends one row per finished video to a .csv or .jsonl file, flushed each time."""

    def __init__(self, path: Path, columns: list[str]):
        if path.suffix.lower() not in (".csv", ".jsonl"):
            raise InputError(f"--out {path}: use a .csv or .jsonl file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.columns = path, columns
        self.fh = path.open("w", encoding="utf-8", newline="")
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
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="also write rows to FILE.csv or FILE.jsonl"),
        rule: Optional[str] = typer.Option(None, "--rule", help="videophy2: also judge this physical rule "
                                           "(0 violated, 1 followed, 2 cannot tell); a 'rule' column sets one per video"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="videos per forward pass"),
        preset: Optional[str] = typer.Option(None, "--preset", "-p", help="preset name from configs/"),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file"),
        sets: Optional[list[str]] = typer.Option(None, "--set", help="override a config key, e.g. "
                                                 "--set scorer.reference_truncation=true (repeatable)"),
    ) -> int:
        """Score videos for semantic adherence (SA) and physical commonsense (PC)."""
        from rich.console import Console
        from rich.table import Table

        from . import registry
        from .config import load_config
        from .scoring import score_videos

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
        console, errc = Console(), Console(stderr=True)
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
