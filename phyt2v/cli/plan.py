"""``phyt2v plan PROMPT [--preset/--config/--set] [--keyframes N] [--json] [--out FILE]``: LVD's stage 1 alone.

The LLM extracts the Step-1 rules, then plans a dynamic scene layout (``llm_steps.plan_layout``); no video model
loads. The layout is printed (a table of boxes per keyframe, or ``--json``) and drawn as an SVG strip, written to
``--out`` (default ``<out>/plans/<prompt-slug>.svg``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from .options import ConfigOpt, PresetOpt, SetOpt, build_config, err, json_opt, out, out_opt


def layout_table(layout: Any):
    """Rows = keyframes, columns = objects (id: name), cells = [x0 y0 x1 y1] as fractions of the frame."""
    from rich.markup import escape
    from rich.table import Table

    names: dict[int, str] = {}
    for kf in layout.keyframes:
        for o in kf.objects:
            names.setdefault(o.id, o.name)
    names = dict(sorted(names.items()))
    t = Table("t (s)", *[escape(f"{i}: {n}") for i, n in names.items()],
              title="layout: boxes \\[x0 y0 x1 y1] as fractions of the frame")
    for kf in layout.keyframes:
        boxes = {o.id: " ".join(f"{v:.2f}" for v in o.box) for o in kf.objects}
        t.add_row(f"{kf.t:g}", *[boxes.get(i, "-") for i in names])
    return t


def plan(
    prompt: str = typer.Argument(..., help="what the video should show"),
    preset: Optional[str] = PresetOpt,
    config: Optional[Path] = ConfigOpt,
    sets: Optional[list[str]] = SetOpt,
    keyframes: int = typer.Option(6, "--keyframes", "-k", min=2, max=12, help="keyframes to plan, two per second "
                                  "(LVD plans 6)"),
    picture: Optional[Path] = out_opt("where to write the SVG picture (default <out>/plans/<prompt>.svg)"),
    as_json: bool = json_opt("print the layout as JSON (boxes as x0, y0, x1, y1 fractions of the frame)"),
) -> None:
    """Plan a dynamic scene layout for PROMPT (LVD): each object's box per keyframe, obeying physics. LLM only."""
    from rich.markup import escape

    from ..loop.layouts import aspect_of, layout_json
    from ..loop.llm_steps import extract_rules, plan_layout
    from ..loop.refiner import Refiner
    from ..loop.run import validate_prompt
    from ..store.files import atomic_write_text, slugify
    from ..store.paths import ensure_file_parent
    from ..store.record import CallLog
    from ..views.layout_svg import layout_svg

    cfg = build_config(preset, config, sets, command="plan")
    prompt = validate_prompt(prompt, "plan")  # before the LLM loads
    path = picture or Path(cfg.out) / "plans" / f"{slugify(prompt, 60)}.svg"
    ensure_file_parent(path)
    llm = Refiner(cfg).backend("llm")
    log, retries = CallLog(None), cfg.loop.parse_retries
    with err.status("asking the LLM for the physical rules and a layout ..."):
        rules = extract_rules(llm, prompt, log=log, retries=retries)
        layout = plan_layout(llm, prompt, rules, log=log, retries=retries, keyframes=keyframes)
    atomic_write_text(path, layout_svg(layout, title=prompt, aspect=aspect_of(cfg.generator)))
    if as_json:
        print(json.dumps(layout_json(layout), ensure_ascii=False))
        err.print(f"picture: {path}", soft_wrap=True, highlight=False)
        return
    out.print(layout_table(layout))
    out.print(f"[bold]background:[/bold] {escape(layout.background)}", highlight=False)
    out.print(f"[bold]reasoning:[/bold] {escape(layout.reasoning)}", highlight=False)
    out.print(f"picture: {path}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(plan)
