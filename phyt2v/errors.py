"""Typed errors raised by the library. Only ``cli/app.py`` turns them into exit codes."""

from __future__ import annotations


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class Phyt2vError(Exception):
    """Base class. ``str(err)`` is one line a user can act on (the problem and the fix)."""

    exit_code = 1


class ConfigError(Phyt2vError):
    """A config file, preset, override or value is invalid. The message names the key."""

    exit_code = 2


class InputError(Phyt2vError):
    """Bad user input: empty prompt, prompt over the token budget, missing video, ..."""

    exit_code = 2


class BackendNotFound(ConfigError):
    """Unknown backend or preset name; the message suggests the nearest names."""


class BackendError(Phyt2vError):
    """A backend failed to load or to run (missing package, missing weights, no CUDA)."""


class LoadError(BackendError):
    """A backend failed to load (missing weights, a bad model path, a package missing, out of memory at load):
    not one prompt's fault, every other prompt would fail the same way, so a batch stops on it."""


def load_error(role: str, err: BaseException) -> LoadError:
    """A failure while loading the ``role`` backend as a LoadError: another library error keeps its message,
    anything else is named with its type."""
    if isinstance(err, Phyt2vError):
        return LoadError(str(err))
    return LoadError(f"load {role} failed: {type(err).__name__}: {first_line(err)} (PHYT2V_DEBUG=1 shows the "
                     "traceback)")


class LLMError(Phyt2vError):
    """The LLM endpoint failed after bounded retries (down, 429, 5xx, timeout, reset)."""


class ParseError(Phyt2vError):
    """An LLM reply could not be parsed into the step's schema, even after retries.

    Carries the raw text and the expected fields so the run record can show both.
    """

    def __init__(self, message: str, *, raw: str = "", expected: list[str] | None = None, step: str = ""):
        super().__init__(message)
        self.raw = raw
        self.expected = list(expected or [])
        self.step = step


class JobFailed(BackendError):
    """A served video job ended in ``failed`` (e.g. ``moderation_blocked``): the message names the server's error
    code and message. ``code`` is that code (None when the server gave none)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code


class VideoError(Phyt2vError):
    """A video file is missing, unreadable, corrupt or has no frames."""


class Interrupted(Phyt2vError):
    """The user pressed Ctrl-C; the current step was written and the run can be resumed."""

    exit_code = 130


class BudgetExceeded(Interrupted):
    """The next served video would pass ``phyt2v batch --max-cost``: no job was started; what is done is saved and a
    rerun with a larger budget resumes."""

    exit_code = 1


class RunLocked(InputError):
    """Another process is working on this run folder; the message names its pid and host."""
