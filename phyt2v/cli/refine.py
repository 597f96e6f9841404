"""``phyt2v refine PROMPT`` (the loop) and ``phyt2v enhance PROMPT`` (rules + one rewrite, no video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import Phyt2vError
from ..store.paths import ensure_dir
from .options import (
    ConfigOpt,
    DraftOpt,
    FreshOpt,
    PresetOpt,
    RoundsOpt,
    SeedOpt,
    SeedsOpt,
    SetOpt,
    ThresholdOpt,
    build_config,
    err,
    json_opt,
    out,
    out_opt,
)


def refine(
    prompt: str = typer.Argument(..., help="what the video should show"),
    preset: Optional[str] = PresetOpt,
    config: Optional[Path] = ConfigOpt,
    rounds: Optional[int] = RoundsOpt,
    threshold: Optional[float] = ThresholdOpt,
    seed: Optional[int] = SeedOpt,
    seeds: Optional[int] = SeedsOpt,
    draft: Optional[bool] = DraftOpt,
    out_dir: Optional[Path] = out_opt("runs folder (default ./runs)"),
    sets: Optional[list[str]] = SetOpt,
    fresh: bool = FreshOpt,
    as_json: bool = json_opt("print the run record as JSON at the end, with run_dir and best_video (absolute paths)"),
) -> None:
    """Run the PhyT2V loop on PROMPT: generate, caption, score, refine; keep the best round."""
    from ..loop.refiner import Refiner
    from .progress import RefineProgress, rounds_table

    cfg = build_config(preset, config, sets, rounds=rounds, threshold=threshold, seed=seed, seeds=seeds,
                       draft=draft, out_dir=out_dir)
    ensure_dir(cfg.out)
    if cfg.generator.model.startswith("tiny"):
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
        print(run_json(result))  # plain: no wrapping inside strings
        return
    out.print(rounds_table(result.record))
    best = result.best
    if best is not None:
        out.print(f"best round: {best.index} (score {best.scores.score:.3f}), stop: {result.stop_reason}")
        f = result.final
        if f is not None and f.scores is not None:
            out.print(f"draft rounds; final render of round {f.round} at full settings: SA {f.scores.sa:.3f} "
                      f"PC {f.scores.pc:.3f} score {f.scores.score:.3f}")
        out.print(f"best video: {result.best_video}", soft_wrap=True, highlight=False)
    out.print(f"run folder: {result.run_dir}", soft_wrap=True, highlight=False)


def run_json(result: Any) -> str:
    """``refine --json``: the run record, plus ``run_dir`` and ``best_video`` (absolute paths; None without a
    scored round) so that a script needs no guessing where the run went."""
    import json

    data = json.loads(result.record.model_dump_json())
    best = result.best_video
    data["run_dir"] = str(Path(result.run_dir).resolve())
    data["best_video"] = str(Path(best).resolve()) if best is not None else None
    return json.dumps(data, indent=2, ensure_ascii=False)


def _print_partial(refiner: Any, prompt: str) -> None:
    from ..loop.run import validate_prompt
    from ..store.record import RunStore
    from .progress import rounds_table

    try:
        rec = RunStore(refiner.out / refiner.run_id(validate_prompt(prompt))).load()
    except Exception:
        return
    if rec is not None and any(r.scores for r in rec.rounds):
        err.print(rounds_table(rec))
        err.print(f"finished rounds are kept in {refiner.out / rec.run_id}")


def enhance(
    prompt: str = typer.Argument(..., help="the prompt to make physics-aware"),
    preset: Optional[str] = PresetOpt,
    config: Optional[Path] = ConfigOpt,
    sets: Optional[list[str]] = SetOpt,
    method: str = typer.Option("phyt2v", "--method", "-m", help="phyt2v (rules + step-back rewrite) | phygdpo "
                               "(PhyGDPO's CoT extension with a physics-richness score)"),
    as_json: bool = json_opt("print every stage as JSON"),
) -> None:
    """A physics-aware rewrite of PROMPT, no video: for closed video models. --method phyt2v: Step 1 (physical
    rules) + one step-back rewrite; --method phygdpo: PhyGDPO's CoT extension and physics-richness score."""
    import json

    from ..loop.enhancers import check_method
    from ..loop.refiner import Refiner

    check_method(method)
    cfg = build_config(preset, config, sets, command="enhance")
    if method == "phygdpo":
        return _enhance_phygdpo(Refiner(cfg), prompt, as_json)
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


def _enhance_phygdpo(refiner: Any, prompt: str, as_json: bool) -> None:
    import json

    from ..loop.enhancers import phygdpo_enhance
    from ..loop.run import validate_prompt
    from ..schemas import PHYSICS_THRESHOLD
    from ..store.record import CallLog

    prompt = validate_prompt(prompt)  # before the LLM loads
    llm = refiner.backend("llm")
    with err.status("asking the LLM for PhyGDPO's chain of thought and an extended prompt ..."):
        cot = phygdpo_enhance(llm, prompt, log=CallLog(None), retries=refiner.config.loop.parse_retries)
    label = "physical" if cot.physical else "not physical"
    if as_json:
        print(json.dumps({"prompt": prompt, "method": "phygdpo", **cot.model_dump(), "physical": cot.physical,
                          "threshold": PHYSICS_THRESHOLD}, indent=2, ensure_ascii=False))
        return
    out.print("[bold]elements:[/bold] " + "; ".join(cot.elements), highlight=False)
    out.print(f"[bold]vision check:[/bold] {cot.vision_check}", highlight=False)
    out.print(f"[bold]physics reasoning:[/bold] {cot.physics_reasoning}", highlight=False)
    out.print(f"[bold]physics score:[/bold] {cot.physics_score:.2f} ({label}; physical at >= "
              f"{PHYSICS_THRESHOLD:.2f})", highlight=False)
    out.print("[bold]extended prompt:[/bold]")
    out.print(cot.extended_prompt, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(refine)
    app.command()(enhance)
