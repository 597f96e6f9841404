"""Command line: ``phyt2v refine | enhance | score | presets | backends | doctor``.

Only this module turns library errors into one red line and a non-zero exit
(``PHYT2V_DEBUG=1`` shows the traceback). Heavy imports happen inside commands.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from .errors import InputError, Phyt2vError

app = typer.Typer(help="phyt2v: make text-to-video models obey physics, without training (PhyT2V loop).",
                  pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

PresetOpt = typer.Option(None, "--preset", "-p", help="preset name from configs/ (`phyt2v presets`)")
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (instead of a preset)")
SetOpt = typer.Option(None, "--set", help="override a config key, e.g. --set generator.steps=30 (repeatable)")
RoundsOpt = typer.Option(None, "--rounds", "-r", min=1, help="maximum rounds per prompt (default 4)")
ThresholdOpt = typer.Option(None, "--threshold", min=0.0, max=1.0, help="stop when the score reaches this")
SeedOpt = typer.Option(None, "--seed", help="video seed, the same in every round")


def _setup_logging() -> None:
    from rich.logging import RichHandler

    lg = logging.getLogger("phyt2v")
    if not lg.handlers:
        h = RichHandler(console=err, show_time=False, show_path=False, markup=False)
        h.setFormatter(logging.Formatter("%(message)s"))
        lg.addHandler(h)
        lg.setLevel(logging.INFO if os.environ.get("PHYT2V_VERBOSE") else logging.WARNING)
        lg.propagate = False


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def build_config(preset: str | None, config: Path | None, sets: list[str] | None, *,
                 rounds: int | None = None, threshold: float | None = None, seed: int | None = None,
                 out_dir: Path | None = None, command: str = "refine"):
    from .config import Config, load_config

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
    if out_dir is not None:
        data["out"] = str(out_dir)
    from pydantic import ValidationError

    from .config import _format_validation

    try:
        return Config.model_validate(data)
    except ValidationError as e:
        from .errors import ConfigError

        raise ConfigError(_format_validation(e, "command line")) from None


@app.command()
def refine(
    prompt: str = typer.Argument(..., help="what the video should show"),
    preset: Optional[str] = PresetOpt,
    config: Optional[Path] = ConfigOpt,
    rounds: Optional[int] = RoundsOpt,
    threshold: Optional[float] = ThresholdOpt,
    seed: Optional[int] = SeedOpt,
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="runs folder (default ./runs)"),
    sets: Optional[list[str]] = SetOpt,
    fresh: bool = typer.Option(False, "--fresh", help="start again instead of resuming (old run is kept aside)"),
    as_json: bool = typer.Option(False, "--json", help="print the run record as JSON at the end"),
) -> None:
    """Run the PhyT2V loop on PROMPT: generate, caption, score, refine; keep the best round."""
    from .progress import RefineProgress, rounds_table
    from .loop import Refiner

    cfg = build_config(preset, config, sets, rounds=rounds, threshold=threshold, seed=seed, out_dir=out_dir)
    if cfg.generator.model == "tiny":
        err.print("[yellow]smoke preset: tiny random-weight models, the videos are noise and the scores "
                  "are meaningless; this only checks the install.[/yellow]")
    with RefineProgress(err, cfg) as prog:
        refiner = Refiner(cfg, on_event=prog.on_event)
        try:
            result = refiner.refine(prompt, fresh=fresh)
        except Phyt2vError:
            prog.stop()
            _print_partial(refiner, prompt)
            raise
    if as_json:
        print(result.record.model_dump_json(indent=2))  # plain: no wrapping inside strings
        return
    out.print(rounds_table(result.record))
    best = result.best
    if best is not None:
        out.print(f"best round: {best.index} (score {best.scores.score:.3f}), stop: {result.stop_reason}")
        out.print(f"best video: {result.best_video}", soft_wrap=True, highlight=False)
    out.print(f"run folder: {result.run_dir}", soft_wrap=True, highlight=False)


def _print_partial(refiner: Any, prompt: str) -> None:
    from .loop import validate_prompt
    from .progress import rounds_table
    from .record import RunStore

    try:
        rec = RunStore(refiner.out / refiner.run_id(validate_prompt(prompt))).load()
    except Exception:
        return
    if rec is not None and any(r.scores for r in rec.rounds):
        err.print(rounds_table(rec))
        err.print(f"finished rounds are kept in {refiner.out / rec.run_id}")


@app.command()
def enhance(
    prompt: str = typer.Argument(..., help="the prompt to make physics-aware"),
    preset: Optional[str] = PresetOpt,
    config: Optional[Path] = ConfigOpt,
    sets: Optional[list[str]] = SetOpt,
    as_json: bool = typer.Option(False, "--json", help="print rules and prompt as JSON"),
) -> None:
    """Step 1 (physical rules) + one step-back rewrite, no video: for closed video models."""
    import json

    from .loop import Refiner

    cfg = build_config(preset, config, sets, command="enhance")
    with err.status("asking the LLM for the physical rules and a step-back rewrite ..."):
        res = Refiner(cfg).enhance(prompt)
    if as_json:
        print(json.dumps({"prompt": res.prompt, "rules": res.rules.model_dump(),
                          "principle": res.refinement.principle, "enhanced": res.refinement.prompt},
                         indent=2, ensure_ascii=False))
        return
    out.print("[bold]objects:[/bold] " + ", ".join(res.rules.objects))
    out.print("[bold]rules:[/bold]")
    for r in res.rules.rules:
        out.print(f"  - {r}")
    out.print(f"[bold]principle:[/bold] {res.refinement.principle}")
    out.print("[bold]enhanced prompt:[/bold]")
    out.print(res.refinement.prompt, markup=False)


@app.command()
def presets() -> None:
    """List the presets in configs/."""
    from rich.table import Table

    from .config import load_config, preset_names

    t = Table("preset", "generator", "llm", "captioner", "scorer", "rounds")
    notes = []
    for name in preset_names():
        c = load_config(name)
        t.add_row(name, c.generator.model, c.llm.backend, c.captioner.model, c.scorer.backend,
                  str(c.loop.max_rounds))
        notes.append(f"[bold]{name}[/bold]: {c.note or ''}")
    out.print(t)
    for n in notes:
        out.print(n, highlight=False)


@app.command()
def backends() -> None:
    """List the backends per role (built-in and plugins from the `phyt2v.backends` entry points)."""
    from rich.table import Table

    from . import registry

    t = Table("role", "backend", "source", "description")
    for role in registry.ROLES:
        for name, target in sorted(registry.available(role).items()):
            src = "built-in" if isinstance(target, str) else f"plugin ({target.value})"
            t.add_row(role, name, src, registry.DESCRIPTIONS.get(f"{role}:{name}", ""))
    out.print(t)


def _register_commands() -> None:
    """The commands that live in their own modules (each has ``register(app)``; imports stay light)."""
    import importlib

    for name in ("cli_score", "cli_batch", "cli_metrics", "cli_report", "cli_doctor"):
        importlib.import_module(f".{name}", __package__).register(app)


_register_commands()


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

        from .errors import first_line

        err.print(Text.assemble(("error: ", "bold red"), f"{type(e).__name__}: {first_line(e)} "
                                "(PHYT2V_DEBUG=1 shows the traceback)"), highlight=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
