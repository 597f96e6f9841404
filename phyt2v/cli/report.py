"""``phyt2v report RUN_OR_BATCH_DIR [--out FILE]``: write a self-contained HTML page and print its path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import out_opt


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        path: Path = typer.Argument(..., help="a run folder (from `phyt2v refine`) or a batch folder "
                                              "(from `phyt2v batch`)"),
        out: Optional[Path] = out_opt("page to write (default: report.html inside PATH; videos are linked "
                                      "relative to it, so keep it on this disk)"),
    ) -> None:
        """Write an HTML report (scores per round, videos, prompt changes) that opens from file://."""
        from ..views.report import write_report

        print(write_report(path, out))
