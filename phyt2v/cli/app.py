"""The ``phyt2v`` Typer app: registers every command module and turns errors into exit codes.

Only this module turns library errors into one red line and a non-zero exit
(``PHYT2V_DEBUG=1`` shows the traceback). Heavy imports happen inside commands.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from ..errors import Phyt2vError
from .options import err

app = typer.Typer(help="phyt2v: make text-to-video models obey physics, without training (PhyT2V loop).",
                  pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False)

# One module per command group, each with ``register(app)``; the order is the order in --help.
COMMAND_MODULES = ("refine", "plan", "info", "doctor", "score", "batch", "export", "metrics", "report")


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(app)


_register_commands()


class _ConsoleHandler(logging.Handler):
    """Prints each log record as one ``warning: ...`` (or ``error:``/``info:``) line on stderr.

    The CLI's only printer of warnings: the loop's "warning" events are logged too, so the progress
    display leaves them to this handler and each warning is printed once.
    """

    STYLES = {"warning": "yellow", "error": "red", "critical": "red"}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from rich.text import Text

            level = record.levelname.lower()
            err.print(Text.assemble((f"{level}: ", self.STYLES.get(level, "")), self.format(record)),
                      highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def _setup_logging() -> None:
    lg = logging.getLogger("phyt2v")
    if not lg.handlers:
        h = _ConsoleHandler()
        h.setFormatter(logging.Formatter("%(message)s"))
        lg.addHandler(h)
        lg.setLevel(logging.INFO if os.environ.get("PHYT2V_VERBOSE") else logging.WARNING)
        lg.propagate = False


def main(argv: list[str] | None = None) -> None:
    _setup_logging()
    try:
        rc = app(args=argv, standalone_mode=False)
    except Phyt2vError as e:
        if os.environ.get("PHYT2V_DEBUG"):
            err.print_exception(show_locals=False)
        from rich.text import Text

        err.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as e:
        # usage errors from click (typer vendors its own copy, so match by behaviour, not class)
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        if type(e).__name__ == "Abort":
            err.print("[red]aborted[/red]")
            sys.exit(130)
        # a bug or a library failure outside any run: still one line
        if os.environ.get("PHYT2V_DEBUG"):
            raise
        from rich.text import Text

        from ..errors import first_line

        err.print(Text.assemble(("error: ", "bold red"), f"{type(e).__name__}: {first_line(e)} "
                                "(PHYT2V_DEBUG=1 shows the traceback)"), highlight=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)
