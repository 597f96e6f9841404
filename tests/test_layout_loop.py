"""The layout check in the loop (``loop.layout: plan | guide``): the planned layout recorded, each round's boxes
measured by the captioner and compared with the plan (IoU), the largest deviations shown to Step 2, the layout
revised after Step 3 and followed by the next round, the layout given to a generator that follows one (names as the
round's prompt says them), resume, and the refusals. Loop logic: scripted LLM, fake generator and captioner
(``doubles.py``); the real backends are exercised in test_guidance.py, test_locate.py and the slow end-to-end test."""

from __future__ import annotations

import json

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, LayoutGenerator, LocatingCaptioner, physics_llm
from doubles import ScriptedLLM

from phyt2v import Refiner, load_config
from phyt2v.errors import BackendError, ConfigError
from phyt2v.loop import layout_steps
from phyt2v.store.record import BoxCheck, RunRecord

PROMPT = "a rubber ball is dropped onto a wooden floor"
# corners on the 512 canvas: the ball falls, the floor stays
BALL = [[200, 20, 260, 80], [200, 100, 260, 160], [200, 200, 260, 260], [200, 300, 260, 360], [200, 400, 260, 460],
        [200, 420, 260, 480]]
FLOOR = [[0, 460, 512, 512]] * 6
BALL2 = [[b[0] + 40, b[1], b[2] + 40, b[3]] for b in BALL]  # the revision moves the ball right


def plan_reply(ball=BALL, name="rubber ball") -> str:
    return json.dumps({"reasoning": "gravity pulls the ball down onto the floor", "background": "room",
                       "objects": [{"name": name, "boxes": ball}, {"name": "wooden floor", "boxes": FLOOR}]})


def layout_llm(revisions: list[str] | None = None, refined: list[str] | None = None):
    """physics_llm, plus the layout step: the first plan is BALL, each revision the next of ``revisions``."""
    base = physics_llm(refined or [f"the rubber ball is dropped onto the wooden floor, try {i}" for i in range(9)])
    revisions = list(revisions or [])
    plans: list[int] = []

    def answer(messages):
        if "Plan exactly" in messages[1]["content"]:
            plans.append(1)
            return plan_reply() if len(plans) == 1 else (revisions.pop(0) if revisions else plan_reply())
        return base.script(messages)

    return ScriptedLLM(answer)


def found(names, times):
    """The ball found where planned at the first keyframe and 0.06 of the frame too high at the others (about half
    its height); the floor never found."""
    rows = []
    for k, _ in enumerate(times):
        b = [v / 512 for v in BALL[k]]
        ball = b if k == 0 else [b[0], b[1] - 0.06, b[2], b[3] - 0.06]
        rows.append([ball if n == "rubber ball" else None for n in names])
    return rows


def make(tmp_path, mode="plan", llm=None, gen=None, cap=None, rounds=2, **loop):
    cfg = load_config(loop={"max_rounds": rounds, "min_rounds": rounds, "layout": mode, **loop}, out=str(tmp_path))
    parts = dict(llm=llm or layout_llm(), generator=gen or FakeGenerator(), captioner=cap or LocatingCaptioner(found),
                 scorer=FakeScorer([(0.5, 0.5)] * 8))
    return Refiner(cfg, **parts), parts


def test_plan_mode_checks_each_round_against_the_plan_and_follows_the_revision(tmp_path):
    ref, parts = make(tmp_path, llm=layout_llm([plan_reply(BALL2)]))
    res = ref.refine(PROMPT)
    rec = RunRecord.model_validate_json((res.run_dir / "run.json").read_text())
    assert rec.layout is not None and [o.name for o in rec.layout.keyframes[0].objects] == ["rubber ball", "wooden floor"]
    r1, r2 = rec.rounds
    assert r1.done == ["generate", "caption", "score", "layout check", "mismatch", "refine", "relayout"]
    assert r1.layout.plan == rec.layout and not r1.layout.guided
    ball = [row[0] for row in r1.layout.keyframes]
    assert ball[0].iou == 1.0 and all(0 < b.iou < 0.5 for b in ball[1:])  # found too high from keyframe 2 on
    assert all(row[1].measured is None and row[1].iou == 0.0 for row in r1.layout.keyframes)  # the floor: not found
    ious = [b.iou for row in r1.layout.keyframes for b in row]
    assert r1.layout.mean_iou == pytest.approx(sum(ious) / len(ious), abs=1e-4)
    assert len(r1.layout.frames) == 6 and all((res.run_dir / f).is_file() for f in r1.layout.frames)
    # the captioner was asked once per round, for each object, at the keyframes (fractions of the video)
    (video, names, times), _ = parts["captioner"].located
    assert video == res.run_dir / "round-1" / "video.mp4" and names == ["rubber ball", "wooden floor"]
    assert times == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # Step 2 was shown the largest deviations (the floor, never found, first), Step 3's revision was recorded
    asked = [m for m in ref.backend("llm").calls if "Step 2." in m[-1]["content"]][0][-1]["content"]
    assert "The largest deviations:" in asked and "the wooden floor was not found" in asked
    assert r1.layout.revised is not None and r1.layout.revised.keyframes[0].objects[0].box[0] == pytest.approx(240 / 512)
    assert r2.layout.plan == r1.layout.revised  # round 2 follows the revision
    assert r2.done[-1] == "layout check" and r2.layout.revised is None  # the last round stops before Step 2
    assert parts["generator"].calls and not hasattr(parts["generator"], "layouts")  # plan: nothing to guide


def test_guide_gives_each_round_its_layout_named_as_its_prompt_says(tmp_path):
    gen = LayoutGenerator()
    refined = ["the ball falls onto the wooden floor and bounces"]
    ref, _ = make(tmp_path, "guide", llm=layout_llm(refined=refined), gen=gen)
    rec = ref.refine(PROMPT).record
    first, second = gen.layouts
    assert [o.name for o in first.keyframes[0].objects] == ["rubber ball", "wooden floor"]
    assert [o.name for o in second.keyframes[0].objects] == ["ball", "wooden floor"]  # LVD's matching: the last word
    assert second.keyframes[3].objects[0].box == rec.rounds[1].layout.plan.keyframes[3].objects[0].box
    assert rec.rounds[0].layout.guided and rec.rounds[1].layout.guided
    calls = [json.loads(x) for x in (ref.out.glob("*/calls.jsonl").__next__()).read_text().splitlines()]
    assert [c["inputs"].get("layout") for c in calls if c["role"] == "generator"] == [True, True]


def test_a_revision_that_cannot_be_used_keeps_the_layout_with_a_warning(tmp_path):
    bad = plan_reply(name="tennis racket")  # not a phrase of the prompt: re-asked once, then given up
    events = []
    ref, _ = make(tmp_path, llm=layout_llm([bad, bad]))
    ref.on_event = events.append
    rec = ref.refine(PROMPT).record
    assert rec.status == "finished" and rec.rounds[0].layout.revised is None
    assert rec.rounds[1].layout.plan == rec.rounds[0].layout.plan
    assert any(e.kind == "warning" and "could not be revised" in e.data["message"] for e in events)


def test_a_failed_check_resumes_without_planning_or_rendering_again(tmp_path):
    cap = LocatingCaptioner(found, fail=BackendError("the VLM went away"))
    llm = layout_llm()
    ref, parts = make(tmp_path, llm=llm, cap=cap, rounds=1)
    with pytest.raises(BackendError):
        ref.refine(PROMPT)
    asked, rendered = len(llm.calls), len(parts["generator"].calls)
    rec = Refiner(ref.config, **parts).refine(PROMPT).record
    assert rec.status == "finished" and rec.rounds[0].layout.mean_iou is not None
    assert len(llm.calls) == asked and len(parts["generator"].calls) == rendered and len(cap.located) == 2


def test_layout_needs_a_captioner_that_locates_and_guide_a_generator_that_follows(tmp_path):
    with pytest.raises(ConfigError, match=r"^loop.layout=plan checks each video's boxes with the captioner, but the "
                                          r"'fake' captioner cannot locate objects"):
        make(tmp_path, cap=FakeCaptioner())
    with pytest.raises(ConfigError, match=r"^loop.layout=guide needs a generator that follows a layout .* the 'fake' "
                                          r"generator cannot"):
        make(tmp_path, "guide", gen=FakeGenerator())
    cfg = load_config("smoke", overrides=["loop.layout=guide", "generator.backend=openai", "generator.model=m",
                                          "generator.base_url=http://127.0.0.1:9"])
    with pytest.raises(ConfigError, match="the 'openai' generator cannot"):
        Refiner(cfg)  # before anything loads
    make(tmp_path, "none", cap=FakeCaptioner())  # no layout: any captioner


def test_deviations_in_words_and_ious():
    planned = [0.4, 0.7, 0.6, 0.9]
    high = BoxCheck(id=0, name="red ball", planned=planned, measured=[0.1, 0.2, 0.3, 0.4], iou=0.0)
    assert layout_steps.deviation(high, 2.5) == ("at 2.5 s the red ball is 0.50 of the frame higher and 0.30 further "
                                                 "left than planned (seen at x 0.10-0.30, y 0.20-0.40, IoU 0.00)")
    big = BoxCheck(id=0, name="cup", planned=planned, measured=[0.35, 0.6, 0.65, 1.0], iou=0.33)
    assert layout_steps.deviation(big, 0) == ("at 0.0 s the cup is near its planned place, 3.0 times the planned size "
                                              "(seen at x 0.35-0.65, y 0.60-1.00, IoU 0.33)")
    assert layout_steps.iou([0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5]) == pytest.approx(1 / 3)
    assert layout_steps.iou([0, 0, 0.5, 0.5], None) == 0.0
    two = [[0, 0, 0.2, 0.2], [0.8, 0.8, 1, 1]]
    assert layout_steps.pair(two, [two[1], two[0]]) == two  # two objects of one name: the found boxes that fit best
    assert layout_steps.pair(two, [None, two[0]]) == [two[0], None]


def test_the_report_draws_planned_and_measured_boxes_over_the_keyframes(tmp_path):
    import re

    from phyt2v.views.report import write_report

    ref, _ = make(tmp_path, rounds=1)
    res = ref.refine(PROMPT)
    page = write_report(res.run_dir).read_text()
    assert page.count('<figure class="keyframe">') == 6 and "mean IoU" in page
    assert 'href="round-1/layout/keyframe-2.jpg"' in page  # the saved keyframe, relative to the page
    w, h = 160, 160  # the fake videos are 16x16
    planned = re.findall(r'<rect class="planned" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', page)
    measured = re.findall(r'<rect class="measured" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', page)
    assert len(planned) == 12 and len(measured) == 6  # the ball and the floor planned; only the ball found
    x0, y0, x1, y1 = (v / 512 for v in BALL[2])
    assert [float(v) for v in planned[4]] == pytest.approx([x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h], abs=0.06)
    assert float(measured[2][1]) == pytest.approx((y0 - 0.06) * h, abs=0.06)  # found 0.06 of the frame higher
