"""The PhyT2V loop (paper Fig. 6): rules once, then per round generate -> caption -> score ->
mismatch -> step-back refinement, until a stop rule fires; the best round is returned.

Imports only the role interfaces: backends are built by name through the registry (or passed in).
Every step is written to disk before the next starts, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import memplan, redact, registry, steps
from .config import Config, hash_of, load_config
from .errors import BackendError, InputError, Interrupted, Phyt2vError, first_line
from .locks import FolderLock
from .record import CallLog, RunStore, fsync_path, slugify, video_problem
from .roles import video_info
from .schemas import Refinement, RoundRecord, RoundScores, Rules, RunRecord, StepError, now

log = logging.getLogger("phyt2v")

ROLES = ("llm", "generator", "captioner", "scorer")
# The steps of a round, in order; a lost video drops "generate" and everything after it.
ROUND_STEPS = ("generate", "caption", "score", "mismatch", "refine")


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
        self._calls_base = 0.0
        redact.watch(self.config.llm.api_key_env)
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

    def run_id(self, prompt: str, config_hash: str | None = None) -> str:
        digest = hashlib.sha256(f"{prompt}\n{config_hash or self.config.hash()}".encode()).hexdigest()[:8]
        return f"{slugify(prompt)}-{digest}"

    def run_dir(self, prompt: str) -> Path:
        """The run's folder: named by the config hash, or an existing folder named by the legacy hash
        (made before runtime knobs left the hash), which is resumed."""
        new = self.out / self.run_id(prompt)
        if new.exists():
            return new
        legacy = self.config.legacy_hash()
        old = self.out / self.run_id(prompt, legacy) if legacy else None
        if old is None or not old.is_dir():  # made with other runtime knobs: find it by its saved config
            old = next((d for d in sorted(self.out.glob(f"{slugify(prompt)}-*")) if self._same_run(d, prompt)), None)
        if old is not None:
            self._warn(f"resuming {old.name}, a run folder named by the earlier config hash")
            return old
        return new

    def _same_run(self, d: Path, prompt: str) -> bool:
        if not re.fullmatch(r".*-[0-9a-f]{8}", d.name) or not (d / "config.json").is_file():
            return False
        try:
            saved = json.loads((d / "config.json").read_text(encoding="utf-8"))
            rec = RunStore(d).load()
        except (OSError, ValueError, Phyt2vError):
            return False
        return rec is not None and rec.prompt == prompt and hash_of(saved) == self.config.hash()

    def token_budget(self) -> int:
        """The loaded generator's budget; before it loads, the config's, else what the model's files say
        (model_index.json, tokenizer/transformer configs), else a stated default (generators.budget)."""
        gen = self._backends["generator"]
        if gen is not None and getattr(gen, "max_prompt_tokens", None):
            return int(gen.max_prompt_tokens)
        from .generators.budget import budget_before_load

        return budget_before_load(self.config.generator)

    def tokens_per_word(self) -> float | None:
        """The loaded generator's measured tokens per English word (None: steps' fallback rate)."""
        gen = self._backends["generator"]
        fn = getattr(gen, "tokens_per_word", None)
        return fn() if callable(fn) else None

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
        budget, gen = self.token_budget(), self._backends["generator"]
        count = gen.count_tokens if gen is not None else steps.estimate_tokens  # no generator: from words
        tpw = self.tokens_per_word()
        ref = steps.enhance_prompt(llm, prompt, rules, budget_tokens=budget, log=calls, retries=retries,
                                   tokens_per_word=tpw)
        n = count(ref.prompt)
        if n > budget:  # like refine: one re-ask with the measured length, then a warning
            note = (f"Your last rewrite was about {n} tokens, over the {budget}-token limit of the video "
                    "model: write a shorter prompt.")
            ref = steps.enhance_prompt(llm, prompt, rules, budget_tokens=budget, log=calls, retries=retries,
                                       note=note, tokens_per_word=tpw)
            n = count(ref.prompt)
            if n > budget:
                self._warn(f"the enhanced prompt is about {n} tokens, over the video model's {budget}-token "
                           "budget: its text encoder will cut the end")
        return EnhanceResult(prompt=prompt, rules=rules, refinement=ref, calls=calls)

    def refine(self, prompt: str, *, fresh: bool = False, run_id: str | None = None) -> RefineResult:
        prompt = validate_prompt(prompt)
        if self._plan is None:  # raises ConfigError, before any weights load, when a role cannot fit
            self._plan = memplan.run_plan(self.config)
            self._swapper = memplan.swapper_for(self._plan)
            log.info(self._plan.summary())
            log.info(self._plan.llm_line())
        store = RunStore(self.out / run_id if run_id else self.run_dir(prompt))
        with FolderLock(store.dir):  # a second process on this folder gets RunLocked (exit 2)
            return self._refine_locked(prompt, store, fresh)

    def _refine_locked(self, prompt: str, store: RunStore, fresh: bool) -> RefineResult:
        if fresh and any(p.name != FolderLock.NAME for p in store.dir.iterdir()):
            backup = store.dir.with_name(f"{store.dir.name}.old-{int(time.time())}")
            backup.mkdir()
            for p in store.dir.iterdir():  # the folder (and its lock, held) stays
                if p.name != FolderLock.NAME:
                    p.rename(backup / p.name)
            self._warn(f"--fresh: the earlier run was moved to {backup}")
        rec = store.load()
        if rec is not None and rec.status == "finished":
            lost = self._lost_videos(rec, store)
            if not lost:
                self._emit(Event("run_end", data={"resumed": True, "already_finished": True}))
                return RefineResult(rec, store.dir)
            k, problem = lost[0]
            self._warn(f"{store.dir} finished, but the video of round {k} is {problem}: generating it again")
        resumed = rec is not None
        if rec is None:
            rec = RunRecord(run_id=store.dir.name, prompt=prompt, config_hash=self.config.hash())
        store.dir.mkdir(parents=True, exist_ok=True)
        store.save_config(self.config.effective())
        rec.status, rec.error = "running", None
        rec.invocations.append({"time": now(), "pid": os.getpid(), "host": socket.gethostname(),
                                "config_hash": self.config.hash(), "runtime": self.config.runtime()})
        rec.memory_plan = self._plan.as_dict()
        rec.scorer_quantized = self._plan.quantized_scorer
        store.save(rec)
        self._calls_base = rec.timings.get("model_calls_s", 0.0)
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
            except InputError as e:
                if not resumed and rec.rules is None and not rec.rounds:  # refused before any work: no run folder
                    shutil.rmtree(store.dir, ignore_errors=True)
                    raise
                rec.status = "failed"
                rec.error = StepError(step=self._current_step, kind=type(e).__name__, message=str(e))
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
                if store.dir.is_dir():
                    rec.timings["last_session_s"] = round(time.perf_counter() - t_run, 3)
                    rec.timings["model_calls_s"] = round(self._calls_base + store.calls.total_s, 3)
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
        rec.timings["model_calls_s"] = round(self._calls_base + store.calls.total_s, 3)  # survives a SIGKILL
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
            self._current_step = "check prompt"
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
            if len(rec.rounds) >= k and rec.rounds[k - 1].prompt != current:  # an earlier round was redone
                self._warn(f"round {k - 1} was redone and refined its prompt differently: "
                           f"rounds {k}..{len(rec.rounds)} are run again", k)
                del rec.rounds[k - 1:]
            if len(rec.rounds) < k:
                rec.rounds.append(RoundRecord(index=k, prompt=current))
            rnd = rec.rounds[k - 1]
            rnd.models = dict(rec.models)
            video = store.round_dir(k) / "video.mp4"
            if "generate" in rnd.done and (problem := video_problem(video)):
                self._warn(f"round {k}'s video {video} is {problem}: generating it again", k)
                rnd.done = [s for s in rnd.done if s not in ROUND_STEPS]
            if "generate" not in rnd.done:
                t0 = self._begin("generate", k)
                rnd.prompt_tokens = gen.count_tokens(rnd.prompt)
                rnd.over_budget = rnd.prompt_tokens > budget
                if rnd.over_budget and k > 1:
                    self._warn(f"round {k} prompt is {rnd.prompt_tokens} tokens, over the {budget}-token "
                               "budget: the text encoder will cut it", k)
                with calls.call("generator", gen, "generate", {"prompt": rnd.prompt, "seed": cfg.seed}) as e:
                    made = gen.generate(rnd.prompt, seed=cfg.seed, out_path=video,
                                        on_step=lambda i, n, k=k: self._emit(Event("denoise", k, "generate",
                                                                                   {"i": i, "total": n})))
                    e["output"] = str(video.relative_to(store.dir))
                fsync_path(video)  # on disk before the record says it exists
                rnd.video_info = video_info(made, store.dir)  # real frames, fps, truncation, knobs
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
                del rec.rounds[k:]  # rounds after a redone one that now stops here
                return self._finish(rec, store, reason)
            if "mismatch" not in rnd.done:
                t0 = self._begin("mismatch", k)
                rnd.mismatch = steps.find_mismatch(llm, user_prompt=rec.prompt, prompt=rnd.prompt,
                                                   rules=rec.rules, caption=rnd.caption or "", log=calls,
                                                   retries=cfg.parse_retries)
                self._step_done(rec, store, rnd, "mismatch", time.perf_counter() - t0)
            if not rnd.mismatch.mismatches and k >= cfg.min_rounds:
                del rec.rounds[k:]
                return self._finish(rec, store, "empty_mismatch")
            if "refine" not in rnd.done:
                t0 = self._begin("refine", k)
                rnd.refinement = self._refine(llm, rec, rnd, budget, calls)
                rnd.refined_prompt = " ".join(rnd.refinement.prompt.split())
                self._step_done(rec, store, rnd, "refine", time.perf_counter() - t0)
            current = rnd.refined_prompt
        self._finish(rec, store, "max_rounds")

    @staticmethod
    def _lost_videos(rec: RunRecord, store: RunStore) -> list[tuple[int, str]]:
        """(round, problem) for each round of a run whose video is missing, empty or cut short."""
        lost = []
        for r in rec.rounds:
            problem = video_problem(store.dir / r.video) if r.video else "missing"
            if "generate" in r.done and problem:
                lost.append((r.index, problem))
        return lost

    def _refine(self, llm: Any, rec: RunRecord, rnd: RoundRecord, budget: int, calls: CallLog) -> Refinement:
        cfg, gen = self.config.loop, self._backends["generator"]
        history = steps.history_text(rec.rounds) if cfg.history_in_refine else ""
        kw = dict(user_prompt=rec.prompt, prompt=rnd.prompt, rules=rec.rules, mismatch=rnd.mismatch,
                  budget_tokens=budget, log=calls, retries=cfg.parse_retries, tokens_per_word=self.tokens_per_word())
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
