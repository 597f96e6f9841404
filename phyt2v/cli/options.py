"""What the commands share: the two consoles, the config options (defined once) and ``build_config``.

Each option is a typer ``OptionInfo``; a command uses it as a parameter default. Options whose help
differs per command (``--out``, ``--json``) are made by a small function taking that help text.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TextIO

import typer
from rich.console import Console

from ..errors import InputError
from ..store.redact import scrub


class ScrubbedConsole(Console):
    """A rich Console that scrubs the API key (``redact.scrub``) from every string it prints before laying it out,
    so that no wrapping can split a key where ``scrubbed_output``'s streams would no longer see it whole."""

    def print(self, *objects: Any, **kw: Any) -> None:
        super().print(*(scrub(o) if isinstance(o, str) else o for o in objects), **kw)


class ScrubbedStream:
    """A text stream that writes everything through ``redact.scrub`` to the stream it wraps."""

    def __init__(self, inner: TextIO):
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.inner, name)


@contextmanager
def scrubbed_output() -> Iterator[None]:
    """stdout and stderr scrubbed of the API key while a command runs: whatever a model echoed (a prompt, a
    caption, an error) reaches the terminal as ``***``, whoever prints it (rich, print, a library's warning)."""
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(sys.stdout), ScrubbedStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old


out = ScrubbedConsole()
err = ScrubbedConsole(stderr=True)

PresetOpt = typer.Option(None, "--preset", "-p", help="preset name from configs/ (`phyt2v presets`)")
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (instead of a preset)")
SetOpt = typer.Option(None, "--set", help="override a config key, e.g. --set generator.steps=30 (repeatable)")
RoundsOpt = typer.Option(None, "--rounds", "-r", min=1, help="maximum rounds per prompt (default 4)")
ThresholdOpt = typer.Option(None, "--threshold", min=0.0, max=1.0, help="stop when the score reaches this")
SeedOpt = typer.Option(None, "--seed", help="video seed, the same in every round")
SeedsOpt = typer.Option(None, "--seeds", min=1, max=32, help="best-of-N: N videos per round (seeds seed.."
                        "seed+N-1), all scored, the best carried on (loop.seeds; N x the generation cost)")
DraftOpt = typer.Option(None, "--draft/--no-draft", help="render refinement rounds cheaper, then the best prompt at "
                        "full settings (loop.draft.enabled; settings under loop.draft)")
FreshOpt = typer.Option(False, "--fresh", help="start again instead of resuming (old run is kept aside)")


def out_opt(help: str):
    """``--out/-o PATH`` with this command's meaning of PATH."""
    return typer.Option(None, "--out", "-o", help=help)


def json_opt(help: str):
    """``--json``: print machine-readable JSON instead of tables."""
    return typer.Option(False, "--json", help=help)


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def build_config(preset: str | None, config: Path | None, sets: list[str] | None, *,
                 rounds: int | None = None, threshold: float | None = None, seed: int | None = None,
                 seeds: int | None = None, draft: bool | None = None, out_dir: Path | None = None,
                 command: str = "refine"):
    """The validated Config from the shared options (the preset, then the file, then --set, then flags)."""
    from pydantic import ValidationError

    from ..config import Config, format_validation, load_config
    from ..errors import ConfigError

    if preset is None and config is None:
        if command == "refine" and not _cuda_available():
            raise InputError("no CUDA GPU found and no --preset given: the default preset (cogvideox-5b) needs a "
                             "GPU. Try `phyt2v refine --preset smoke \"...\"` to check the install, or "
                             "`phyt2v enhance \"...\"` to rewrite a prompt for another video model.")
        preset = "cogvideox-5b"
    cfg = load_config(preset, file=config, overrides=sets)
    data = cfg.model_dump()
    if rounds is not None:
        data["loop"]["max_rounds"] = rounds
        data["loop"]["min_rounds"] = min(data["loop"]["min_rounds"], rounds)
    if threshold is not None:
        data["loop"]["threshold"] = threshold
    if seed is not None:
        data["loop"]["seed"] = seed
    if seeds is not None:
        data["loop"]["seeds"] = seeds
    if draft is not None:
        data["loop"]["draft"]["enabled"] = draft
    if out_dir is not None:
        data["out"] = str(out_dir)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation(e, "command line")) from None
