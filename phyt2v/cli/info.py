"""``phyt2v presets | backends`` (doctor: cli/doctor.py): what is available, without running anything."""

from __future__ import annotations

import typer

from .options import out


def presets() -> None:
    """List the presets in configs/."""
    from rich.table import Table

    from ..config import load_config, preset_names

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


def backends() -> None:
    """List the backends per role (built-in and plugins from the `phyt2v.backends` entry points)."""
    from rich.table import Table

    from .. import registry

    t = Table("role", "backend", "source", "description")
    for role in registry.ROLES:
        for name, entry in sorted(registry.available(role).items()):
            src = entry.source if entry.source == "built-in" else f"{entry.source}: {entry.target}"
            t.add_row(role, name, src, registry.DESCRIPTIONS.get(f"{role}:{name}", ""))
    out.print(t)


def register(app: typer.Typer) -> None:
    for fn in (presets, backends):
        app.command()(fn)
