"""What the commands share: the two consoles, the config options (defined once) and ``build_config``.

Each option is a typer ``OptionInfo``; a command uses it as a parameter default. Options whose help
differs per command (``--out``, ``--json``) are made by a small function taking that help text.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..errors import InputError

out = Console()
err = Console(stderr=True)

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
