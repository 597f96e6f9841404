"""The steps of a run, as tables: what each step does, on which lane, what it records, when it is redone.

A run is ``run_steps(cfg)`` once (rules; PhyGDPO's CoT and its physics gate when asked), then rounds of ``round_steps(cfg)`` until a stop
check fires, then -- with draft rounds -- ``FINAL_STEPS`` on the best round's prompt at full settings.

Resume rule, the same for every step: a step whose name is in its record's ``done`` list is skipped; every
other step runs, then is written to disk (``Host.execute``) before the next one starts. A round whose
video is lost (missing, empty, cut short) forgets ``generate`` and everything after it. Stop checks are not
recorded: they run again on resume and decide the same way from the saved scores.

Best-of-N (``loop.seeds`` = N > 1): generate renders N seeds, score scores them all and keeps the best, caption
describes the best; with one seed the order is the paper's, generate -> caption -> score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError, Phyt2vError
from ..roles import video_info
from ..store.record import Candidate, FinalRender, RoundRecord, RoundScores, RunRecord
from . import layout_steps as lay
from . import llm_steps as steps
from .enhancers import phygdpo_enhance
from .ensemble import member_score, pick, with_member_scores
from .renders import draft_overrides, lost_video, lost_video_of, render, seeds_of
from .renders import rel as _rel
from .run import Host, Run

Target = Any  # RoundRecord | FinalRender | None (a run-level step)
Body = Callable[[Host, Run, Target], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Step:
    name: str    # recorded in the target's ``done`` list, shown in progress
    lane: str    # "gpu" | "llm" | "generator": which worker runs it (lanes.py)
    body: Body   # does the work and fills the record; returns extra data for the step_end event


@dataclass(frozen=True)
class Check:
    """A stop rule, evaluated each time the loop passes it (not recorded): a reason ends the run."""

    name: str
    rule: Callable[[Host, Run, RoundRecord], "str | None"]


# ---------------------------------------------------------------- stop rules (one place)

def best_round(rounds: list[RoundRecord]) -> int | None:
    scored = [r for r in rounds if r.scores is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: (r.scores.score, -r.index)).index


def stop_reason(rounds: list[RoundRecord], cfg: Any) -> str | None:
    """The stop rule after the last round was scored (mismatch-empty is checked after Step 2)."""
    scored = [r.scores.score for r in rounds if r.scores is not None]
    if not scored:
        return None
    if len(rounds) >= cfg.max_rounds:
        return "max_rounds"
    if len(rounds) < cfg.min_rounds:
        return None
    if scored[-1] >= cfg.threshold:
        return "threshold"
    best, since = scored[0], 0
    for s in scored[1:]:
        if s >= best + cfg.epsilon:
            best, since = s, 0
        else:
            best, since = max(best, s), since + 1
    if since >= cfg.patience:
        return "no_improvement"
    return None


def _after_scores(r: Host, run: Run, rnd: RoundRecord) -> str | None:
    return stop_reason(run.rec.rounds[:rnd.index], r.config.loop)


def _after_mismatch(r: Host, run: Run, rnd: RoundRecord) -> str | None:
    empty = rnd.mismatch is not None and not rnd.mismatch.mismatches
    return "empty_mismatch" if empty and rnd.index >= r.config.loop.min_rounds else None


def combine_scores(cfg: Any, s: Any) -> RoundScores:
    """A scorer's Scores as the round's scores: SA, PC and their weighted score (``loop.sa_weight``/``pc_weight``),
    each checked to be a number in [0, 1] (a NaN, e.g. a VideoPhy-2 answer with no rating, fails the step); an
    ensemble's members each get their own score in ``extra["scorers"]``."""
    for name in ("sa", "pc"):
        v = getattr(s, name)
        if isinstance(v, float) and v != v:
            raise Phyt2vError(f"the scorer gave no usable {name.upper()} for this video "
                              f"({getattr(s, 'extra', {}).get('unparseable', 'no value')}); run the same "
                              "command again to retry this step, or choose another scorer")
        if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise Phyt2vError(f"the scorer returned {name.upper()}={v!r}; scores must be in [0, 1]")
    score = member_score(cfg, s.sa, s.pc)  # an ensemble's means: the weighted mean of its members' scores
    return RoundScores(sa=float(s.sa), pc=float(s.pc), score=float(score),
                       extra=with_member_scores(cfg, dict(s.extra or {})))


# ---------------------------------------------------------------- run-level steps

def _rules(r: Host, run: Run, _: Target) -> None:
    run.rec.rules = steps.extract_rules(r.backend("llm"), run.rec.prompt, log=run.store.calls,
                                        retries=r.config.loop.parse_retries)


def _physics(r: Host, run: Run, _: Target) -> dict[str, Any]:
    cot = run.rec.enhancement = phygdpo_enhance(r.backend("llm"), run.rec.prompt, log=run.store.calls,
                                                retries=r.config.loop.parse_retries)
    return {"physics_score": cot.physics_score, "physical": cot.physical}


def _needs_physics(cfg: Any) -> bool:
    return cfg.enhancer == "phygdpo" or cfg.min_physics is not None


def _physics_gate(r: Host, run: Run, _: Any) -> str | None:
    m, cot = r.config.loop.min_physics, run.rec.enhancement
    return "not_physical" if m is not None and cot is not None and cot.physics_score < m else None


RULES = Step("rules", "llm", _rules)
PHYSICS = Step("physics", "llm", _physics)  # PhyGDPO's CoT: element parsing .. physics score, extended prompt
PHYSICS_GATE = Check("min physics", _physics_gate)
LAYOUT = Step("layout", "llm", lay.plan)  # loop.layout: LVD's planned layout (layout_steps.py)


def run_steps(cfg: Any) -> tuple[Step | Check, ...]:
    first = (RULES, PHYSICS, PHYSICS_GATE) if _needs_physics(cfg) else (RULES,)
    return (*first, LAYOUT) if cfg.layout != "none" else first


def run_done(rec: RunRecord) -> set[str]:
    """Run-level steps on disk (the record's own fields say it: records predate a run-level done list)."""
    return {name for name, v in (("rules", rec.rules), ("physics", rec.enhancement), ("layout", rec.layout))
            if v is not None}


def first_prompt(r: Host, run: Run) -> str:
    """Round 1's prompt: the user's, or PhyGDPO's extended prompt with ``loop.enhancer: phygdpo``."""
    cot = run.rec.enhancement
    if r.config.loop.enhancer == "phygdpo" and cot is not None:
        return " ".join(cot.extended_prompt.split())
    return run.rec.prompt


# ---------------------------------------------------------------- round steps

def _generate(r: Host, run: Run, rnd: RoundRecord) -> None:
    cfg, gen, k = r.config.loop, r.backend("generator"), rnd.index
    rnd.prompt_tokens = gen.count_tokens(rnd.prompt)
    rnd.over_budget = rnd.prompt_tokens > run.budget
    if rnd.over_budget and rnd.prompt != run.rec.prompt:  # the user's own prompt was checked before round 1
        r.warn(f"round {k} prompt is {rnd.prompt_tokens} tokens, over the {run.budget}-token budget: the text "
                "encoder will cut it", k)
    rnd.draft = cfg.draft.enabled
    seeds = seeds_of(cfg, run.seed)
    d = run.store.round_dir(k)
    paths = [d / "video.mp4"] if len(seeds) == 1 else [d / f"video-s{s}.mp4" for s in seeds]
    made = render(r, run, rnd.prompt, seeds, paths, draft_overrides(r, gen) if rnd.draft else None, k, rnd,
                  lay.render_layout(r, run, rnd))
    if len(seeds) == 1:
        rnd.video, rnd.seed = _rel(run, paths[0]), seeds[0]
        rnd.video_info = video_info(made[0], run.store.dir)
        rnd.candidates = []
    else:
        rnd.video = rnd.video_info = rnd.seed = rnd.scores = None
        rnd.candidates = [Candidate(seed=s, video=_rel(run, p), video_info=video_info(m, run.store.dir))
                          for s, p, m in zip(seeds, paths, made)]


def _caption(r: Host, run: Run, t: Any) -> None:
    captioner = r.backend("captioner")
    objects = run.rec.rules.objects if run.rec.rules else []
    with run.store.calls.call("captioner", captioner, "caption", {"video": t.video, "objects": objects}) as e:
        t.caption = e["output"] = captioner.caption(run.store.dir / t.video, objects=objects) or ""


def score_video(r: Host, run: Run, video: str) -> RoundScores:
    scorer = r.backend("scorer")
    with run.store.calls.call("scorer", scorer, "score", {"video": video, "prompt": run.rec.prompt}) as e:
        s = scorer.score(run.store.dir / video, run.rec.prompt)  # SA always against the user's ORIGINAL prompt
        e["output"] = {"sa": s.sa, "pc": s.pc}
    return combine_scores(r.config.loop, s)


def _score(r: Host, run: Run, t: Any) -> dict[str, Any]:
    if getattr(t, "candidates", None):
        for c in t.candidates:
            if c.scores is None:
                c.scores = score_video(r, run, c.video)
        best = pick(t.candidates, r.config.loop.combine)  # loop.combine: mean or rank (ensemble.py)
        t.video, t.video_info, t.seed, t.scores = best.video, best.video_info, best.seed, best.scores
    else:
        t.scores = score_video(r, run, t.video)
    s = t.scores
    return {"sa": s.sa, "pc": s.pc, "score": s.score, "seed": t.seed,
            "candidates": [c.scores.score for c in getattr(t, "candidates", [])]}


def _mismatch(r: Host, run: Run, rnd: RoundRecord) -> None:
    rec = run.rec
    rnd.mismatch = steps.find_mismatch(r.backend("llm"), user_prompt=rec.prompt, prompt=rnd.prompt, rules=rec.rules,
                                       caption=rnd.caption or "", log=run.store.calls,
                                       retries=r.config.loop.parse_retries, evidence=lay.evidence(rnd))


def _refine(r: Host, run: Run, rnd: RoundRecord) -> None:
    rnd.refinement = r.refine_prompt(run, rnd)
    rnd.refined_prompt = " ".join(rnd.refinement.prompt.split())


GENERATE = Step("generate", "generator", _generate)  # the gpu lane, or a served generator's own (lanes.py)
CAPTION = Step("caption", "gpu", _caption)
SCORE = Step("score", "gpu", _score)
MISMATCH = Step("mismatch", "llm", _mismatch)
REFINE = Step("refine", "llm", _refine)
LAYOUT_CHECK = Step("layout check", "gpu", lay.check)  # loop.layout: the captioner's boxes against the plan
RELAYOUT = Step("relayout", "llm", lay.relayout)  # loop.layout: Step 3's layout for the next round
AFTER_SCORES = Check("stop rules", _after_scores)
AFTER_MISMATCH = Check("empty mismatch", _after_mismatch)
ROUND_STEPS = ("generate", "caption", "score", "layout check", "mismatch", "refine", "relayout")  # recorded names


def round_steps(cfg: Any) -> tuple[Step | Check, ...]:
    evaluate = (CAPTION, SCORE) if cfg.seeds == 1 else (SCORE, CAPTION)
    check, revise = ((LAYOUT_CHECK,), (RELAYOUT,)) if cfg.layout != "none" else ((), ())
    return (GENERATE, *evaluate, *check, AFTER_SCORES, MISMATCH, AFTER_MISMATCH, REFINE, *revise)


# ---------------------------------------------------------------- the final render of a drafted run

def _final_generate(r: Host, run: Run, f: FinalRender) -> None:
    d = run.store.dir / "final"
    d.mkdir(exist_ok=True)
    path = d / "video.mp4"
    made = render(r, run, f.prompt, [f.seed], [path], None, None, f, lay.render_layout(r, run, f))
    f.video, f.video_info = _rel(run, path), video_info(made[0], run.store.dir)


FINAL_STEPS = (Step("generate", "generator", _final_generate), Step("caption", "gpu", _caption),
               Step("score", "gpu", _score))


def final_target(r: Host, run: Run) -> FinalRender:
    """The final render's record: the best draft round's prompt and seed (made anew if the best changed)."""
    rec = run.rec
    best = rec.rounds[rec.best_round - 1]
    seed = best.seed if best.seed is not None else run.seed if run.seed is not None else r.config.loop.seed
    f = rec.final
    if f is None or f.round != best.index or f.prompt != best.prompt or f.seed != seed:
        f = rec.final = FinalRender(round=best.index, prompt=best.prompt, seed=seed)
    if "generate" in f.done and (problem := lost_video_of(run, f.video)):
        r.warn(f"the final render's video {f.video} is {problem}: rendering it again")
        f.done = []
    return f


# ---------------------------------------------------------------- the driver

def drive(r: Host, run: Run) -> None:
    """Run (or resume) every step of ``run`` until a stop rule fires."""
    rec, cfg = run.rec, r.config.loop
    if reason := walk(r, run, run_steps(cfg), None):
        del rec.rounds[:]
        return finish(r, run, reason)
    current = first_prompt(r, run)
    for k in range(1, cfg.max_rounds + 1):
        rnd = open_round(r, run, k, current)
        if reason := walk(r, run, round_steps(cfg), rnd):
            del rec.rounds[k:]  # rounds after a redone one that now stops here
            return finish(r, run, reason)
        current = rnd.refined_prompt
    finish(r, run, "max_rounds")


def walk(r: Host, run: Run, table: tuple[Step | Check, ...], target: Target) -> str | None:
    """Each step of ``table`` not yet done on ``target`` (None: the run itself), in order; the stop reason of
    the first check that fires, else None."""
    for step in table:
        if isinstance(step, Check):
            if reason := step.rule(r, run, target):
                return reason
        elif step.name not in (run_done(run.rec) if target is None else target.done):
            r.execute(step, run, target)
            evaluated = isinstance(target, RoundRecord) and {"caption", "score"} <= set(target.done)
            if step in (CAPTION, SCORE) and evaluated and r.on_round:
                r.on_round(target)
    return None


def open_round(r: Host, run: Run, k: int, prompt: str) -> RoundRecord:
    rec = run.rec
    if len(rec.rounds) >= k and rec.rounds[k - 1].prompt != prompt:  # an earlier round was redone
        r.warn(f"round {k - 1} was redone and refined its prompt differently: rounds {k}..{len(rec.rounds)} "
                "are run again", k)
        del rec.rounds[k - 1:]
    if len(rec.rounds) < k:
        rec.rounds.append(RoundRecord(index=k, prompt=prompt))
    rnd = rec.rounds[k - 1]
    rnd.models = dict(rec.models)
    if problem := lost_video(run, rnd):
        r.warn(f"round {k}'s video is {problem}: generating it again", k)
        rnd.done = [s for s in rnd.done if s not in ROUND_STEPS]
    return rnd


def finish(r: Host, run: Run, reason: str) -> None:
    rec = run.rec
    rec.stop_reason = reason
    rec.best_round = best_round(rec.rounds)
    if r.config.loop.draft.enabled and rec.best_round is not None:
        walk(r, run, FINAL_STEPS, final_target(r, run))
    elif rec.final is not None:
        rec.final = None
    rec.status, rec.error = "finished", None
    run.store.save(rec)


def check_prompt(r: Host, run: Run) -> None:
    """Before any work: the user's prompt must fit the generator's token budget (or be allowed not to)."""
    gen, cfg = r.backend("generator"), r.config.loop
    n = gen.count_tokens(run.rec.prompt)
    if n > run.budget:
        msg = (f"the prompt is {n} tokens but {gen.model_id} reads at most {run.budget}; shorten it, or pass "
               "--set loop.allow_long_prompt=true to let the text encoder cut it")
        if not cfg.allow_long_prompt:
            raise InputError(msg)
        r.warn(msg)

