"""``phyt2v doctor [--preset P | --config F] [--set k=v] [--vram GB] [--json]``: what this machine can run
and, for a preset, its memory plan and LLM choice. Loads no weights; works offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def plan_for(cfg, vram: float | None) -> tuple[dict, str]:
    """(the plan as plain data, its one-line summary) for a config, on ``vram`` GiB or this machine."""
    from .. import registry
    from ..runtime.memplan import free_vram, make_plan

    for role in registry.ROLES:  # settings the model cannot take: refused as a run would, before any download
        registry.check_before_load(role, cfg)
    free = free_vram(vram)
    plan = make_plan(cfg, free, cuda=True if vram is not None else None)
    data = {"preset": cfg.preset, "vram": "given" if vram is not None else "this machine", **plan.as_dict()}
    return data, plan.summary()


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        preset: Optional[str] = typer.Option(None, "--preset", "-p", help="show this preset's memory plan"),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file (instead of a preset)"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="override a config key, e.g. "
                                                 "--set captioner.quantization=nf4 (repeatable)"),
        vram: Optional[float] = typer.Option(None, "--vram", help="plan for a card with this many GiB "
                                             "(default: this machine's free VRAM)"),
        as_json: bool = typer.Option(False, "--json", help="print the plan as one JSON object"),
    ) -> None:
        """What this machine can run: CUDA and free VRAM, packages, keys set (never values), caches, presets;
        with --preset, the memory plan (bytes per role, placement, peak), which LLM is used and why, and each
        served role's endpoint (reachable, model listed, key set)."""
        from rich.console import Console

        out = Console()
        if preset is None and config is None:
            if as_json or vram is not None:
                from ..errors import InputError

                raise InputError("--json and --vram need a config: add --preset NAME (`phyt2v presets`) or --config FILE")
            from .doctor_report import environment_checks, print_endpoints, report

            out.print(report())
            print_endpoints(out, environment_checks())
            return
        from ..config import load_config
        from ..runtime.endpoints import as_dict, check_all, configured
        from .doctor_report import print_endpoints

        cfg = load_config(preset, file=config, overrides=set_)
        data, line = plan_for(cfg, vram)
        checks = check_all(configured(cfg))  # every served role's endpoint, probed at once
        if as_json:
            print(json.dumps({**data, "endpoints": [as_dict(c) for c in checks]}))
            return
        out.print(plan_table(data, line))
        print_endpoints(out, checks)


def plan_table(data: dict, line: str):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    gib = lambda b: f"{b / 2**30:.1f} GiB"  # noqa: E731
    t = Table("role", "model", "weights", "working", "source", title=f"memory plan: {data['preset'] or 'config'}",
              title_justify="left")
    for role, r in data["roles"].items():
        src = f"shared with {r['shared_with']}" if r.get("shared_with") else r["source"]
        t.add_row(role, r["model"], gib(r["bytes"]), gib(r["work_bytes"]), src)
    llm = data["llm_choice"]
    lines = [Text(line), Text(f"LLM: {llm['backend']} {llm['model']} -- {llm['reason']}")]
    if data["quantized_scorer"]:
        lines.append(Text("scorer is quantized: its scores are not the published metric", style="yellow"))
    return Group(t, *lines)
