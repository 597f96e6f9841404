"""The prompts file of ``phyt2v score``: which prompt (and rule) goes with which video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from .tables import FORMATS, read_rows

_PROMPT_KEYS = ("prompt", "caption")
_PATH_KEYS = ("video", "videopath", "path")
WHERE = "_where"


def read_prompts_file(path: Path) -> list[dict[str, Any]]:
    """Rows with ``prompt`` and optional ``video`` and ``rule``, from .txt (one prompt a line),
    .csv, .jsonl or .json (keys prompt|caption, video|videopath|path, rule); a relative video path
    is taken from the file's folder."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    rows = []
    for r in read_rows(path, where=WHERE, fmt=fmt if fmt in ("csv", "jsonl", "json") else "text"):
        prompt = next((r[k] for k in _PROMPT_KEYS if r.get(k)), None)
        if prompt is None:
            raise InputError(f"{r[WHERE]}: no prompt; give a 'prompt' or 'caption' column")
        video = next((r[k] for k in _PATH_KEYS if r.get(k)), None)
        if video is not None and not Path(video).is_absolute():
            video = str(path.parent / video)
        rows.append({"prompt": prompt, "video": video, "rule": r.get("rule") or None})
    return rows


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
