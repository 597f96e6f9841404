"""The ``phyt2v`` Typer app: registers every command module and turns errors into exit codes.

Only this module turns library errors into one red line and a non-zero exit
(``PHYT2V_DEBUG=1`` shows the traceback). Heavy imports happen inside commands.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import signal
import sys
import threading

import typer

from ..errors import Phyt2vError
from ..store.redact import scrub
from .options import err, scrubbed_output

app = typer.Typer(help="phyt2v: make text-to-video models obey physics, without training (PhyT2V loop).",
                  pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False)

# One module per command group, each with ``register(app)``; the order is the order in --help.
COMMAND_MODULES = ("refine", "plan", "info", "doctor", "score", "batch", "export", "metrics", "report", "reproduce")


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
            err.print(Text.assemble((f"{level}: ", self.STYLES.get(level, "")), scrub(self.format(record))),
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


def _exit_now(signum: int, frame: object) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, RuntimeError, ValueError):  # a write in progress, a closed stream: leave it
        pass
    os._exit(130)


def _exit(code: int) -> None:
    """Exit with ``code``. phyt2v's worker threads still running (a pipelined batch's prompts abandoned by a second
    Ctrl-C, in a model call that may take minutes) would keep the interpreter alive until they end: exit without
    waiting for them (every finished step is on disk already; the unfinished ones are redone on resume). A Ctrl-C
    while exiting (a second press after the first one's stop completed) ends it at once with 130."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _exit_now)
    if any(t.name.startswith("phyt2v-") and not t.daemon and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _ignore_sigint_at_exit() -> None:
    """The last exit handler (registered first): from here on a Ctrl-C is ignored. Python's finalization puts the
    default action back for a signal whose handler is a Python function (``_exit_now``), so a second press landing
    there would kill the process by SIGINT instead of letting it exit with its code (130 after a Ctrl-C); an
    ignored signal is left ignored, and nothing after this point can wait on anything."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread():
        atexit.unregister(_ignore_sigint_at_exit)  # once, and before any later handler: exit handlers run last first
        atexit.register(_ignore_sigint_at_exit)
    _setup_logging()
    with scrubbed_output():
        _main(argv)


def _main(argv: list[str] | None) -> None:
    try:
        rc = app(args=argv, standalone_mode=False)
    except Phyt2vError as e:
        if os.environ.get("PHYT2V_DEBUG"):
            err.print_exception(show_locals=False)
        from rich.text import Text

        err.print(Text.assemble(("error: ", "bold red"), scrub(str(e))), highlight=False, soft_wrap=True)
        _exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]")
        _exit(130)
    except Exception as e:
        # usage errors from click (typer vendors its own copy, so match by behaviour, not class)
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            _exit(e.exit_code)
        if type(e).__name__ == "Abort":
            err.print("[red]aborted[/red]")
            _exit(130)
        # a bug or a library failure outside any run: still one line
        if os.environ.get("PHYT2V_DEBUG"):
            raise
        from rich.text import Text

        from ..errors import first_line

        err.print(Text.assemble(("error: ", "bold red"), f"{type(e).__name__}: {scrub(first_line(e))} "
                                "(PHYT2V_DEBUG=1 shows the traceback)"), highlight=False, soft_wrap=True)
        _exit(1)
    _exit(rc if isinstance(rc, int) else 0)
