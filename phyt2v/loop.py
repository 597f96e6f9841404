"""The PhyT2V loop (paper Fig. 6): rules once, then per round generate -> caption -> score ->
mismatch -> step-back refinement, until a stop rule fires; the best round is returned.

Imports only the role interfaces: backends are built by name through the registry (or passed in).
Every step is written to disk before the next starts, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import memplan, registry, steps
from .config import Config, load_config
from .errors import BackendError, InputError, Interrupted, Phyt2vError, first_line
from .record import CallLog, RunStore, slugify
from .schemas import Refinement, RoundRecord, RoundScores, Rules, RunRecord, StepError

log = logging.getLogger("phyt2v")

ROLES = ("llm", "generator", "captioner", "scorer")


@dataclass
class Event:
    kind: str  # run_start | step_start | step_end | denoise | round_end | warning | run_end
    round: int | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RefineResult:
    record: RunRecord
    run_dir: Path

    @property
    def rounds(self) -> list[RoundRecord]:
        return self.record.rounds

    @property
    def best(self) -> RoundRecord | None:
        k = self.record.best_round
        return self.record.rounds[k - 1] if k else None

    @property
    def best_video(self) -> Path | None:
        b = self.best
        return self.run_dir / b.video if b and b.video else None

    @property
    def stop_reason(self) -> str | None:
        return self.record.stop_reason


@dataclass
class EnhanceResult:
    prompt: str
    rules: Rules
    refinement: Refinement
    calls: CallLog


def validate_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise InputError(f"the prompt must be text, not {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise InputError('the prompt is empty; pass the scene to generate, e.g. '
                         'phyt2v refine "a rubber ball is dropped onto a wooden floor"')
    return text


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


class Refiner:
    """``Refiner(config).refine(prompt)``; backends are built on first use (loaded once) or passed in."""

    def __init__(self, config: Config | None = None, *, llm: Any = None, generator: Any = None,
                 captioner: Any = None, scorer: Any = None, out: str | Path | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 on_round: Callable[[RoundRecord], None] | None = None):
        self.config = config if config is not None else load_config()
        self._backends: dict[str, Any] = {"llm": llm, "generator": generator, "captioner": captioner,
                                          "scorer": scorer}
        for role, obj in self._backends.items():  # fail on a misspelt backend before any work
            if obj is None:
                registry.check(role, getattr(self.config, role).backend)
        self.out = Path(out if out is not None else self.config.out)
        self.on_event = on_event
        self.on_round = on_round
        self._stop_flag = False
        self._plan: memplan.Plan | None = None
        self._swapper: Any = None

    # ------------------------------------------------------------ plumbing
    def backend(self, role: str) -> Any:
        if self._backends[role] is None:
            self._current_step = f"load {role}"
            self._emit(Event("step_start", step=f"load {role}"))
            t0 = time.perf_counter()
            if self._swapper is not None:
                self._swapper.park_all()  # the GPU free for the role that loads now
            cfg = memplan.build_config(self.config, self._plan) if self._plan else self.config
            obj = registry.build(role, cfg)
            self._backends[role] = self._swapper.wrap(role, obj) if self._swapper is not None else obj
            self._emit(Event("step_end", step=f"load {role}", data={"seconds": time.perf_counter() - t0}))
        return self._backends[role]

    def model_name(self, role: str) -> str:
        b = self._backends[role]
        return f"{getattr(b, 'backend', type(b).__name__)}:{getattr(b, 'model_id', '?')}"

    def _emit(self, ev: Event) -> None:
        if self.on_event is not None:
            self.on_event(ev)

    def _warn(self, message: str, k: int | None = None) -> None:
        log.warning(message)
        self._emit(Event("warning", round=k, data={"message": message}))

    def run_id(self, prompt: str) -> str:
        digest = hashlib.sha256(f"{prompt}\n{self.config.hash()}".encode()).hexdigest()[:8]
        return f"{slugify(prompt)}-{digest}"

    def token_budget(self) -> int:
        gen = self._backends["generator"]
        if gen is not None and getattr(gen, "max_prompt_tokens", None):
            return int(gen.max_prompt_tokens)
        return int(self.config.generator.max_prompt_tokens or 226)

    @contextmanager
    def _sigint_guard(self) -> Iterator[None]:
        """First Ctrl-C: finish and write the current step, then stop. Second: stop now."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._stop_flag = False

        def handler(signum, frame):
            if self._stop_flag:
                raise KeyboardInterrupt
            self._stop_flag = True
            self._warn("Ctrl-C: finishing the current step, then stopping (press again to stop now)")

        old = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)

    # ------------------------------------------------------------ public API
    def enhance(self, prompt: str) -> EnhanceResult:
        """Step 1 + one step-back rewrite, no video (for closed video models)."""
        prompt = validate_prompt(prompt)
        calls = CallLog(None)
        retries = self.config.loop.parse_retries
        llm = self.backend("llm")
        rules = steps.extract_rules(llm, prompt, log=calls, retries=retries)
        ref = steps.enhance_prompt(llm, prompt, rules, budget_tokens=self.token_budget(), log=calls,
                                   retries=retries)
        return EnhanceResult(prompt=prompt, rules=rules, refinement=ref, calls=calls)

    def refine(self, prompt: str, *, fresh: bool = False, run_id: str | None = None) -> RefineResult:
        prompt = validate_prompt(prompt)
        if self._plan is None:  # raises ConfigError, before any weights load, when a role cannot fit
            self._plan = memplan.run_plan(self.config)
            self._swapper = memplan.swapper_for(self._plan)
            log.info(self._plan.summary())
            log.info(self._plan.llm_line())
        store = RunStore(self.out / (run_id or self.run_id(prompt)))
        if fresh and store.dir.exists():
            backup = store.dir.with_name(f"{store.dir.name}.old-{int(time.time())}")
            store.dir.rename(backup)
            self._warn(f"--fresh: the earlier run was moved to {backup}")
        rec = store.load()
        if rec is not None and rec.status == "finished":
            self._emit(Event("run_end", data={"resumed": True, "already_finished": True}))
            return RefineResult(rec, store.dir)
        resumed = rec is not None
        if rec is None:
            rec = RunRecord(run_id=store.dir.name, prompt=prompt, config_hash=self.config.hash())
        store.dir.mkdir(parents=True, exist_ok=True)
        store.save_config(self.config.effective())
        rec.status, rec.error = "running", None
        rec.memory_plan = self._plan.as_dict()
        rec.scorer_quantized = self._plan.quantized_scorer
        store.save(rec)
        self._emit(Event("run_start", data={"run_dir": str(store.dir), "resumed": resumed,
                                            "rounds_done": len(rec.rounds), "memory_plan": self._plan.summary(),
                                            "llm": dict(self._plan.llm), "llm_line": self._plan.llm_line()}))
        t_run = time.perf_counter()
        with self._sigint_guard():
            try:
                self._run(rec, store)
            except KeyboardInterrupt:
                rec.status = "interrupted"
                store.save(rec)
                raise Interrupted(f"interrupted; finished steps are saved in {store.dir}. "
                                  "Run the same command again to resume.") from None
            except Interrupted:
                rec.status = "interrupted"
                store.save(rec)
                raise
            except Exception as e:
                err = e if isinstance(e, Phyt2vError) else BackendError(
                    f"{self._current_step or 'the run'} failed: {type(e).__name__}: {first_line(e)} "
                    f"(finished steps are kept in {store.dir}; PHYT2V_DEBUG=1 shows the traceback)")
                rec.status = "failed"
                rec.error = StepError(step=getattr(err, "step", "") or self._current_step, kind=type(e).__name__,
                                      message=str(err), raw=getattr(err, "raw", None),
                                      expected=getattr(err, "expected", []))
                store.save(rec)
                if err is e:
                    raise
                raise err from e
            finally:
                rec.timings["last_session_s"] = round(time.perf_counter() - t_run, 3)
                rec.timings["model_calls_s"] = round(rec.timings.get("model_calls_s", 0.0) + store.calls.total_s, 3)
                store.save(rec)
        self._emit(Event("run_end", data={"resumed": resumed}))
        return RefineResult(rec, store.dir)

    # ------------------------------------------------------------ the loop
    _current_step = ""

    def _step_done(self, rec: RunRecord, store: RunStore, rnd: RoundRecord | None, step: str,
                   seconds: float, **data: Any) -> None:
        if rnd is not None:
            rnd.done.append(step)
            rnd.timings[f"{step}_s"] = round(seconds, 4)
            store.write_round(rnd)
        rec.best_round = best_round(rec.rounds)
        store.save(rec)
        self._emit(Event("step_end", round=rnd.index if rnd else None, step=step,
                         data={"seconds": seconds, **data}))
        if self._stop_flag:
            raise Interrupted(f"stopped after {step}; finished steps are saved in {store.dir}. "
                              "Run the same command again to resume.")

    def _begin(self, step: str, k: int | None) -> float:
        self._current_step = step
        self._emit(Event("step_start", round=k, step=step))
        return time.perf_counter()

    def _run(self, rec: RunRecord, store: RunStore) -> None:
        cfg, calls = self.config.loop, store.calls
        gen = self.backend("generator")
        budget = rec.token_budget = self.token_budget()
        rec.models["generator"] = self.model_name("generator")
        if not rec.rounds:
            n = gen.count_tokens(rec.prompt)
            if n > budget:
                msg = (f"the prompt is {n} tokens but {gen.model_id} reads at most {budget}; shorten it, or "
                       "pass --set loop.allow_long_prompt=true to let the text encoder cut it")
                if not cfg.allow_long_prompt:
                    raise InputError(msg)
                self._warn(msg)
        llm = self.backend("llm")
        rec.models["llm"] = self.model_name("llm")
        if rec.rules is None:
            t0 = self._begin("rules", None)
            rec.rules = steps.extract_rules(llm, rec.prompt, log=calls, retries=cfg.parse_retries)
            self._step_done(rec, store, None, "rules", time.perf_counter() - t0)
        captioner, scorer = self.backend("captioner"), self.backend("scorer")
        for role in ("captioner", "scorer"):
            rec.models[role] = self.model_name(role)
        current = rec.prompt
        for k in range(1, cfg.max_rounds + 1):
            if len(rec.rounds) < k:
                rec.rounds.append(RoundRecord(index=k, prompt=current))
            rnd = rec.rounds[k - 1]
            rnd.models = dict(rec.models)
            video = store.round_dir(k) / "video.mp4"
            if "generate" not in rnd.done:
                t0 = self._begin("generate", k)
                rnd.prompt_tokens = gen.count_tokens(rnd.prompt)
                rnd.over_budget = rnd.prompt_tokens > budget
                if rnd.over_budget and k > 1:
                    self._warn(f"round {k} prompt is {rnd.prompt_tokens} tokens, over the {budget}-token "
                               "budget: the text encoder will cut it", k)
                with calls.call("generator", gen, "generate", {"prompt": rnd.prompt, "seed": cfg.seed}) as e:
                    gen.generate(rnd.prompt, seed=cfg.seed, out_path=video,
                                 on_step=lambda i, n, k=k: self._emit(Event("denoise", k, "generate",
                                                                            {"i": i, "total": n})))
                    e["output"] = str(video.relative_to(store.dir))
                rnd.video = str(video.relative_to(store.dir))
                self._step_done(rec, store, rnd, "generate", time.perf_counter() - t0)
            if "caption" not in rnd.done:
                t0 = self._begin("caption", k)
                with calls.call("captioner", captioner, "caption",
                                {"video": rnd.video, "objects": rec.rules.objects}) as e:
                    rnd.caption = e["output"] = captioner.caption(video, objects=rec.rules.objects) or ""
                self._step_done(rec, store, rnd, "caption", time.perf_counter() - t0)
            if "score" not in rnd.done:
                t0 = self._begin("score", k)
                with calls.call("scorer", scorer, "score", {"video": rnd.video, "prompt": rec.prompt}) as e:
                    s = scorer.score(video, rec.prompt)  # SA always against the user's ORIGINAL prompt
                    e["output"] = {"sa": s.sa, "pc": s.pc}
                rnd.scores = self._combine(s)
                self._step_done(rec, store, rnd, "score", time.perf_counter() - t0,
                                sa=rnd.scores.sa, pc=rnd.scores.pc, score=rnd.scores.score)
                if self.on_round is not None:
                    self.on_round(rnd)
            reason = stop_reason(rec.rounds[:k], cfg)
            if reason:
                return self._finish(rec, store, reason)
            if "mismatch" not in rnd.done:
                t0 = self._begin("mismatch", k)
                rnd.mismatch = steps.find_mismatch(llm, user_prompt=rec.prompt, prompt=rnd.prompt,
                                                   rules=rec.rules, caption=rnd.caption or "", log=calls,
                                                   retries=cfg.parse_retries)
                self._step_done(rec, store, rnd, "mismatch", time.perf_counter() - t0)
            if not rnd.mismatch.mismatches and k >= cfg.min_rounds:
                return self._finish(rec, store, "empty_mismatch")
            if "refine" not in rnd.done:
                t0 = self._begin("refine", k)
                rnd.refinement = self._refine(llm, rec, rnd, budget, calls)
                rnd.refined_prompt = " ".join(rnd.refinement.prompt.split())
                self._step_done(rec, store, rnd, "refine", time.perf_counter() - t0)
            current = rnd.refined_prompt
        self._finish(rec, store, "max_rounds")

    def _refine(self, llm: Any, rec: RunRecord, rnd: RoundRecord, budget: int, calls: CallLog) -> Refinement:
        cfg, gen = self.config.loop, self._backends["generator"]
        history = steps.history_text(rec.rounds) if cfg.history_in_refine else ""
        kw = dict(user_prompt=rec.prompt, prompt=rnd.prompt, rules=rec.rules, mismatch=rnd.mismatch,
                  budget_tokens=budget, log=calls, retries=cfg.parse_retries)
        ref = steps.refine_prompt(llm, history=history, **kw)
        n = gen.count_tokens(ref.prompt)
        if n > budget:  # one re-ask with the measured length, then accept with a warning
            note = (f"Your last rewrite was {n} tokens, over the {budget}-token limit of the video model: "
                    "write a shorter prompt.\n")
            ref = steps.refine_prompt(llm, history=history + note, **kw)
        return ref

    def _combine(self, s: Any) -> RoundScores:
        cfg = self.config.loop
        for name in ("sa", "pc"):
            v = getattr(s, name)
            if isinstance(v, float) and v != v:  # NaN: e.g. a VideoPhy-2 answer with no rating in it
                raise Phyt2vError(f"the scorer gave no usable {name.upper()} for this video "
                                  f"({getattr(s, 'extra', {}).get('unparseable', 'no value')}); run the same "
                                  "command again to retry this step, or choose another scorer")
            if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise Phyt2vError(f"the scorer returned {name.upper()}={v!r}; scores must be in [0, 1]")
        score = (cfg.sa_weight * s.sa + cfg.pc_weight * s.pc) / (cfg.sa_weight + cfg.pc_weight)
        return RoundScores(sa=float(s.sa), pc=float(s.pc), score=float(score), extra=dict(s.extra or {}))

    def _finish(self, rec: RunRecord, store: RunStore, reason: str) -> None:
        rec.stop_reason, rec.status, rec.error = reason, "finished", None
        rec.best_round = best_round(rec.rounds)
        store.save(rec)
