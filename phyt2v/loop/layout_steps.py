"""The layout steps of a run (``loop.layout: plan | guide``; LVD, Lian et al., ICLR 2024). ``rounds.py`` puts them in
its tables:

- **layout** (run step, after the rules): the LLM plans a dynamic scene layout for the user's prompt
  (``llm_steps.plan_layout``); it is ``RunRecord.layout`` (what ``metrics lvd-layouts`` scores).
- **generate** records the layout the round follows (``RoundRecord.layout.plan``: round 1 the planned one, later
  rounds the previous round's revision, else its plan) and, with ``guide``, passes it to the generator with each
  object's name mapped onto the round's prompt by LVD's phrase matching (``for_prompt``).
- **layout check** (after the caption and score): the captioner's VLM is asked for each planned object's box on the
  video's frames at the keyframes (``captioner.locate``); each planned box gets the IoU with the box found (0 when
  none is); objects that share a name are paired with the found boxes that fit them best; the round records the
  boxes, IoUs, their mean and the keyframe images (``round-<k>/layout/``).
- **Step 2** (mismatch) is shown the largest deviations (``evidence``: IoU under 0.5, worst first, at most 3) as
  text: where each object was seen against where it was planned, in fractions of the frame.
- **relayout** (after Step 3): the LLM plans the layout again for the refined prompt, shown the last layout, the
  deviations and the mismatches; the revision (or None when it kept the boxes) is recorded and the next round
  follows it. A revision that cannot be used keeps the last layout, with a warning.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import ConfigError, ParseError, Phyt2vError, first_line
from ..schemas import CANVAS, Layout
from ..store.record import BoxCheck, LayoutCheck, RoundRecord
from . import llm_steps as steps
from .layouts import layout_json
from .words import find_phrase

if TYPE_CHECKING:
    from .run import Host, Run

DEVIATION = 0.5  # an IoU under this is a deviation worth telling Step 2 about
SHOWN = 3        # deviations shown to Step 2


def check_before_load(config: Any, backends: dict[str, Any]) -> None:
    """ConfigError, before anything loads, for a captioner that cannot locate objects (any ``loop.layout``) and a
    generator that cannot follow a layout (``guide``); ``backends``: the ones passed in, else the classes."""
    mode = config.loop.layout
    if mode == "none":
        return
    cap = backends.get("captioner") or registry.resolve("captioner", config.captioner.backend)
    if not callable(getattr(cap, "locate", None)):
        raise ConfigError(f"loop.layout={mode} checks each video's boxes with the captioner, but the "
                          f"'{getattr(cap, 'backend', config.captioner.backend)}' captioner cannot locate objects: use "
                          "captioner.backend vlm or openai (a grounding VLM such as Qwen2.5-VL), or loop.layout=none")
    gen = backends.get("generator") or registry.resolve("generator", config.generator.backend)
    if mode == "guide" and not getattr(gen, "takes_layout", False):
        raise ConfigError(f"loop.layout=guide needs a generator that follows a layout (generator.backend diffusers "
                          f"with a Wan or CogVideoX model); the '{getattr(gen, 'backend', config.generator.backend)}' "
                          "generator cannot: use loop.layout=plan to plan and check layouts without guidance")


# ---------------------------------------------------------------- run step: plan

def plan(r: "Host", run: "Run", _: Any) -> None:
    run.rec.layout = steps.plan_layout(r.backend("llm"), run.rec.prompt, run.rec.rules, log=run.store.calls,
                                       retries=r.config.loop.parse_retries)


# ---------------------------------------------------------------- the round's layout

def round_plan(run: "Run", k: int) -> Layout:
    """The layout round ``k`` follows: the previous round's revision, else its plan, else the planned layout."""
    prev = run.rec.rounds[k - 2].layout if k >= 2 else None
    if prev is not None:
        return prev.revised or prev.plan
    if run.rec.layout is None:
        raise Phyt2vError("loop.layout is on but the run has no planned layout; run it again with --fresh")
    return run.rec.layout


def for_prompt(layout: Layout, prompt: str) -> Layout:
    """``layout`` with each name replaced by the words of ``prompt`` LVD's phrase matching finds for it (kept as it
    is where none: the generator then records it as not found)."""
    def rename(o: Any) -> Any:
        return o.model_copy(update={"name": find_phrase(prompt, o.name) or o.name})

    return layout.model_copy(update={"keyframes": [kf.model_copy(update={"objects": [rename(o) for o in kf.objects]})
                                                   for kf in layout.keyframes]})


def render_layout(r: "Host", run: "Run", target: Any) -> Layout | None:
    """Before a render: record the round's layout; the layout to guide it with (``guide``), else None. The final
    render of a drafted run follows the best round's layout."""
    mode = r.config.loop.layout
    if mode == "none":
        return None
    if isinstance(target, RoundRecord):
        target.layout = LayoutCheck(plan=round_plan(run, target.index), guided=mode == "guide")
        plan_ = target.layout.plan
    else:
        best = run.rec.rounds[target.round - 1].layout
        plan_ = best.plan if best is not None else run.rec.layout
    return for_prompt(plan_, target.prompt) if mode == "guide" and plan_ is not None else None


# ---------------------------------------------------------------- round step: check

def iou(a: list[float] | None, b: list[float] | None) -> float:
    if a is None or b is None:
        return 0.0
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pair(planned: list[list[float]], found: list[list[float] | None]) -> list[list[float] | None]:
    """The found boxes of objects sharing a name, reordered to fit the planned ones best (total IoU)."""
    if len(planned) < 2 or len(planned) > 6:
        return found
    return list(max(itertools.permutations(found), key=lambda p: sum(iou(a, b) for a, b in zip(planned, p))))


def check(r: "Host", run: "Run", rnd: RoundRecord) -> dict[str, Any]:
    from ..store.video_io import frames_at

    lc = rnd.layout or LayoutCheck(plan=round_plan(run, rnd.index))
    rnd.layout = lc
    objects = sorted({o.id: o.name for kf in reversed(lc.plan.keyframes) for o in kf.objects}.items())
    names, positions = [n for _, n in objects], lc.plan.positions()
    cap = r.backend("captioner")
    with run.store.calls.call("captioner", cap, "locate", {"video": rnd.video, "objects": names,
                                                           "times": positions}) as e:
        seen = e["output"] = cap.locate(run.store.dir / rnd.video, names, positions) if names else []
    if names and (len(seen) != len(positions) or any(len(row) != len(names) for row in seen)):
        raise Phyt2vError(f"the captioner's locate gave {len(seen)} rows for {len(positions)} keyframes of "
                          f"{len(names)} objects; it must give one box (or None) per object per keyframe")
    index = {oid: j for j, (oid, _) in enumerate(objects)}
    lc.keyframes = []
    for k, kf in enumerate(lc.plan.keyframes):
        found = {o.id: seen[k][index[o.id]] for o in kf.objects}
        for name in {o.name for o in kf.objects}:
            same = [o for o in kf.objects if o.name == name]
            found.update(zip([o.id for o in same], pair([o.box for o in same], [found[o.id] for o in same])))
        lc.keyframes.append([BoxCheck(id=o.id, name=o.name, planned=list(o.box), measured=found[o.id],
                                      iou=round(iou(o.box, found[o.id]), 4)) for o in kf.objects])
    all_ = [b.iou for row in lc.keyframes for b in row]
    lc.mean_iou = round(sum(all_) / len(all_), 4) if all_ else None
    lc.frames = keyframe_images(run, rnd.index, frames_at(run.store.dir / rnd.video, positions))
    return {"mean_iou": lc.mean_iou}


def keyframe_images(run: "Run", k: int, frames: list[Any]) -> list[str]:
    """The keyframes as JPEGs in ``round-<k>/layout/`` (the report draws the boxes over them)."""
    from PIL import Image

    d = run.store.round_dir(k) / "layout"
    d.mkdir(exist_ok=True)
    out = []
    for i, arr in enumerate(frames):
        path = d / f"keyframe-{i + 1}.jpg"
        Image.fromarray(arr).convert("RGB").save(path, format="JPEG", quality=90)
        out.append(str(path.relative_to(run.store.dir)))
    return out


# ---------------------------------------------------------------- evidence for Step 2, revision after Step 3

def _where(box: list[float]) -> str:
    return f"x {box[0]:.2f}-{box[2]:.2f}, y {box[1]:.2f}-{box[3]:.2f}"


def deviation(b: BoxCheck, seconds: float) -> str:
    """One deviation in words, e.g. "at 1.5 s the red ball is 0.30 of the frame higher and 0.20 further left than
    planned (IoU 0.05)"."""
    when = f"at {seconds:.1f} s"
    if b.measured is None:
        return f"{when} the {b.name} was not found (planned at {_where(b.planned)} of the frame)"
    dx = (b.measured[0] + b.measured[2] - b.planned[0] - b.planned[2]) / 2
    dy = (b.measured[1] + b.measured[3] - b.planned[1] - b.planned[3]) / 2
    moved = [f"{abs(dy):.2f} of the frame {'lower' if dy > 0 else 'higher'}" if abs(dy) >= 0.05 else "",
             f"{abs(dx):.2f} further {'right' if dx > 0 else 'left'}" if abs(dx) >= 0.05 else ""]
    moved = [m for m in moved if m]
    what = " and ".join(moved) + " than planned" if moved else "near its planned place"
    area = [(x[2] - x[0]) * (x[3] - x[1]) for x in (b.measured, b.planned)]
    ratio = area[0] / area[1] if area[1] > 0 else 1.0
    if ratio >= 1.5 or ratio <= 1 / 1.5:
        what += f", {ratio:.1f} times the planned size"
    return f"{when} the {b.name} is {what} (seen at {_where(b.measured)}, IoU {b.iou:.2f})"


def _seconds(rnd: RoundRecord) -> float:
    info = rnd.video_info or {}
    n, fps = info.get("num_frames"), info.get("fps")
    return (n - 1) / fps if isinstance(n, int) and isinstance(fps, (int, float)) and fps > 0 and n > 1 else 0.0


def deviations(rnd: RoundRecord, limit: int = SHOWN) -> list[str]:
    lc = rnd.layout
    if lc is None:
        return []
    pos, dur = lc.plan.positions(), _seconds(rnd)
    worst = sorted(((b.iou, k, b) for k, row in enumerate(lc.keyframes) for b in row if b.iou < DEVIATION),
                   key=lambda x: (x[0], x[1]))
    return [deviation(b, pos[k] * dur) for _, k, b in worst[:limit]]


def evidence(rnd: RoundRecord) -> str:
    """Step 2's extra evidence: the largest deviations from the planned layout ("" when none)."""
    lines = deviations(rnd)
    if not lines:
        return ""
    return ("A layout check also measured where each object is on the video's keyframes and compared it with the "
            "planned motion (positions as fractions of the frame, from its top-left corner; IoU 1 means exactly as "
            "planned). The largest deviations:\n" + "\n".join(f"- {x}" for x in lines) +
            "\nCount a clear departure from the planned motion as a mismatch.")


def relayout(r: "Host", run: "Run", rnd: RoundRecord) -> dict[str, Any]:
    lc, k = rnd.layout, rnd.index
    if lc is None or not rnd.refined_prompt:
        return {"revised": False}
    boxes: dict[int, tuple[str, list[list[int]]]] = {}
    for kf in lc.plan.keyframes:
        for o in kf.objects:
            boxes.setdefault(o.id, (o.name, []))[1].append([round(v * CANVAS) for v in o.box])
    seen = deviations(rnd, limit=6)
    mism = rnd.mismatch.mismatches if rnd.mismatch else []
    planned = "; ".join(f"{name}: {bs}" for _, (name, bs) in sorted(boxes.items()))
    lines = [f"The prompt was rewritten. The layout planned for it before (each object's boxes as corners on the "
             f"canvas, in the frames that show it): {planned}."]
    if seen:
        lines += ["The video departed from it:", *(f"- {x}" for x in seen)]
    if mism:
        lines += ["The video's mismatches with the physics:", *(f"- {x}" for x in mism)]
    lines.append("Plan the layout for the new caption: keep the motion where it obeys the physical rules, change it "
                 "where the physics needs it.")
    context = "\n".join(lines)
    try:
        new = steps.plan_layout(r.backend("llm"), rnd.refined_prompt, run.rec.rules, log=run.store.calls,
                                retries=r.config.loop.parse_retries, keyframes=len(lc.plan.keyframes), context=context)
    except ParseError as e:
        r.warn(f"round {k}: the layout could not be revised for the refined prompt ({first_line(e)}); the next "
               "round keeps this one", k)
        lc.revised = None
        return {"revised": False}
    same = layout_json(new)["keyframes"] == layout_json(lc.plan)["keyframes"]
    lc.revised = None if same else new
    return {"revised": not same}
