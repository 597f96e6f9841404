"""Rendering for the steps in ``rounds.py``: best-of-N seeds, draft-round settings, one generator call for
several seeds, and whether a recorded video can still be used."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..store.files import fsync_path
from ..store.record import RoundRecord
from ..store.video_io import video_problem
from .run import Run

if TYPE_CHECKING:
    from .run import Host


def seeds_of(cfg: Any, seed: int | None = None) -> list[int]:
    """Best-of-N seeds: the run seed (``seed``, else loop.seed) and the next N-1 (reruns draw the same ones)."""
    first = cfg.seed if seed is None else seed
    return [first + i for i in range(cfg.seeds)]


def draft_overrides(r: "Host", gen: Any) -> dict[str, Any]:
    """The per-call generator settings of a draft round (``loop.draft``)."""
    d = r.config.loop.draft
    o: dict[str, Any] = {"model": d.model} if d.model else {}  # a cheaper served model (loop.draft.model)
    steps_n = d.steps
    if steps_n is None:
        full = getattr(gen, "steps", None)
        if isinstance(full, int):
            steps_n = max(1, round(full * d.steps_fraction))
        elif not d.model:
            raise ConfigError(f"loop.draft: the generator {getattr(gen, 'model_id', '?')} does not say its steps; "
                              "set loop.draft.steps (or, with a served generator, loop.draft.model)")
    if steps_n is not None:
        o["steps"] = steps_n
    if d.height is not None:
        o["height"] = d.height
    if d.width is not None:
        o["width"] = d.width
    if d.cache is not None:
        o["cache"] = d.cache.model_dump()
    return o


def render(r: "Host", run: "Run", prompt: str, seeds: list[int], paths: list[Path],
           overrides: dict[str, Any] | None, k: int | None, target: Any = None, layout: Any = None) -> list[Any]:
    """One video per seed: one batched call when the generator can (``supports_many``), else one per seed. A
    served generator (``takes_job_log``) also gets the ``job_log`` of ``target`` (loop/jobs.py): its jobs are
    recorded there before it waits on them, and a resumed run finds them. ``layout`` (``loop.layout: guide``) goes
    to a generator that follows one (``takes_layout``)."""
    gen = r.backend("generator")
    takes = getattr(gen, "supports_many", False) or "overrides" in inspect.signature(gen.generate).parameters
    if overrides and not takes:  # (a swapped backend's generate is a forwarding wrapper: ask the attribute)
        raise ConfigError(f"loop.draft needs a generator that takes per-call settings; the "
                          f"{getattr(gen, 'backend', type(gen).__name__)} backend does not (use a diffusers "
                          "backend or turn loop.draft off)")
    extra: dict[str, Any] = {"overrides": overrides} if overrides else {}
    if layout is not None:
        if not getattr(gen, "takes_layout", False):
            raise ConfigError(f"loop.layout=guide: the {getattr(gen, 'backend', type(gen).__name__)} generator does "
                              "not follow a layout; use loop.layout=plan")
        extra["layout"] = layout
    if getattr(gen, "takes_job_log", False) and target is not None:
        extra["job_log"] = r.job_log(run, target)
    step = r.denoise_callback(run, k)
    args = {"prompt": prompt, **({"seed": seeds[0]} if len(seeds) == 1 else {"seeds": seeds}),
            **({"overrides": overrides} if overrides else {}), **({"layout": True} if layout is not None else {})}
    with run.store.calls.call("generator", gen, "generate", args) as e:
        if len(seeds) > 1 and getattr(gen, "supports_many", False):
            made = gen.generate_many(prompt, seeds=seeds, out_paths=paths, on_step=step,
                                     batch_size=r.config.loop.seed_batch, **extra)
        else:
            made = [gen.generate(prompt, seed=s, out_path=p, on_step=step, **extra) for s, p in zip(seeds, paths)]
        names = [rel(run, p) for p in paths]
        e["output"] = names[0] if len(names) == 1 else names
    for p in paths:
        fsync_path(p)  # on disk before the record says it exists
    return made


def rel(run: "Run", p: Path) -> str:
    return str(p.relative_to(run.store.dir))


def lost_video(run: "Run", rnd: RoundRecord) -> str | None:
    """Why a generated round's video (or one of its seeds') cannot be used, or None."""
    if "generate" not in rnd.done:
        return None
    for v in [c.video for c in rnd.candidates] or [rnd.video]:
        if problem := lost_video_of(run, v):
            return problem
    return None


def lost_video_of(run: "Run", video: str | None) -> str | None:
    """``missing``, ``empty``, ... (video_problem) for an unusable video, else None."""
    return video_problem(run.store.dir / video) if video else "missing"


def lost_videos(rec: Any, store: Any) -> list[tuple[int, str]]:
    """(round, problem) for each round of a run whose video (or a seed's) is missing, empty or cut short; round 0
    stands for the final render of a drafted run."""
    run = Run(rec, store)
    lost = [(r.index, p) for r in rec.rounds if (p := lost_video(run, r))]
    f = rec.final
    if f is not None and "generate" in f.done and (p := lost_video_of(run, f.video)):
        lost.append((0, p))
    return lost
