"""``phyt2v export BATCH_DIR --format F``: a batch's videos in the layout of another evaluator or trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import err, out, out_opt


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        batch_dir: Path = typer.Argument(..., help="a batch folder (printed by `phyt2v batch`)"),
        fmt: str = typer.Option(..., "--format", "-f", help="videophy-eval | phygenbench | vbench | preference"),
        which: str = typer.Option("best", "--round", help="which round's video: first | best | N "
                                   "(best: the final render with loop.draft; first, N: draft renders)"),
        dest: Optional[Path] = out_opt("file or folder to write (default BATCH_DIR/exports/...)"),
        name: Optional[str] = typer.Option(None, "--name", help="phygenbench: the model folder name "
                                           "(default phyt2v-<generator>)"),
    ) -> None:
        """Write a batch's videos in the layout of another evaluator or trainer."""
        from ..views.export import export

        res = export(batch_dir, fmt, out=dest, which=which, name=name)
        for s in res.skipped[:10]:
            err.print(f"[yellow]skipped[/yellow] {s}", highlight=False)
        if res.missing:
            shown = ", ".join(res.missing[:8]) + (" ..." if len(res.missing) > 8 else "")
            err.print(f"[yellow]{len(res.missing)} prompt(s) have no finished, scored video and were left "
                      f"out[/yellow]: {shown}", highlight=False, soft_wrap=True)
        if res.drafts:
            err.print(f"[yellow]{res.drafts} exported video(s) are draft renders (loop.draft)[/yellow]: --round "
                      "best (the default) exports each prompt's full-settings final render", highlight=False,
                      soft_wrap=True)
        out.print(f"exported {res.exported} prompt(s) to {res.path}", soft_wrap=True, highlight=False)
