"""The PhyT2V loop (paper Fig. 6): rules once, then per round generate -> caption -> score ->
mismatch -> step-back refinement, until a stop rule fires; the best round is returned.

Imports only the role interfaces: backends are built by name through the registry (or passed in).
The steps themselves, their order, resume rule and the stop rules are tables in ``rounds.py``; this module
holds the ``Refiner`` (backends, the run folder and its lock, recording each step, errors) that drives them.
Every step is written to disk before the next starts, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import registry
from ..config import Config, load_config
from ..errors import BackendError, ConfigError, InputError, Interrupted, LoadError, Phyt2vError, first_line, load_error
from ..runtime import lanes as lanes_mod
from ..runtime import memplan
from ..schemas import Refinement
from ..store import redact
from ..store.files import now
from ..store.locks import FolderLock
from ..store.record import FinalRender, RoundRecord, RunRecord, RunStore, StepError
from . import layout_steps
from . import llm_steps as steps
from . import rounds
from .budget import rewrite_within_budget
from .ensemble import load_scorer
from .jobs import JobLog
from .renders import lost_videos
from .rounds import best_round
from .run import Event, RefineResult, Run, find_run_dir, run_id, validate_prompt, with_seed
from .stopping import StopSwitch

if TYPE_CHECKING:
    from .enhancers import EnhanceResult

log = logging.getLogger("phyt2v")

ROLES = ("llm", "generator", "captioner", "scorer")
GPU_ROLES = ("generator", "captioner", "scorer")


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
        for role, obj in self._backends.items():  # and on settings the model cannot take, before any download
            if obj is None:
                registry.check_before_load(role, self.config)
        layout_steps.check_before_load(self.config, self._backends)  # loop.layout: the captioner and generator
        self.out = Path(out if out is not None else self.config.out)
        self.on_event = on_event
        self.on_round = on_round
        redact.watch(self.config.llm.api_key_env)
        self._plan: memplan.Plan | None = None
        self._swapper: Any = None
        # inline; ``pipeline()`` gives each kind of step its worker. No step starts once a stop is requested.
        self.budget: Any = None  # a batch's CostBudget (--max-cost): each served job is charged before it starts
        self.lanes = lanes_mod.Lanes(should_stop=self.stop_requested, generator=self._gate())
        self.last_lanes: lanes_mod.Lanes | None = None
        self._local = threading.local()
        self._load_lock = threading.RLock()
        self._emit_lock = threading.RLock()
        self._stop = StopSwitch(self._emit_lock)  # a stop request is ordered against each step's start event
        self._runs_started = 0

    # ------------------------------------------------------------ plumbing
    def backend(self, role: str) -> Any:
        """The role's backend, built on first use, on the lane its steps run on (a GPU model loads on the
        GPU worker, never while another model runs there)."""
        if self._backends[role] is None:
            self.current_step = f"load {role}"
            kind = "generator" if role == "generator" else "gpu" if role in GPU_ROLES else "llm"
            self.lanes.call(kind, lambda: self._load(role),
                            priority=getattr(self._local, "order", 0))
        return self._backends[role]

    def _load(self, role: str) -> None:
        with self._load_lock:
            if self._backends[role] is not None:  # another prompt's thread loaded it meanwhile
                return
            self._stop.check(f"loading the {role}")
            self.current_step = f"load {role}"
            self._emit(Event("step_start", step=f"load {role}"))
            t0 = time.perf_counter()
            if self._swapper is not None:
                self._swapper.park_all()  # the GPU free for the role that loads now
            cfg = memplan.build_config(self.config, self._plan) if self._plan else self.config
            try:
                if role == "scorer":  # an ensemble's members load (and swap) one by one
                    self._backends[role] = load_scorer(cfg, self._swapper)
                else:
                    obj = registry.build(role, cfg)
                    self._backends[role] = self._swapper.wrap(role, obj) if self._swapper is not None else obj
            except (ConfigError, InputError, Interrupted, LoadError):
                raise
            except Exception as e:  # any other failure to load is not one prompt's fault: a batch stops on it
                raise load_error(role, e) from e
            self._emit(Event("step_end", step=f"load {role}", data={"seconds": time.perf_counter() - t0}))

    def plan(self) -> memplan.Plan:
        """The memory plan (once): raises ConfigError, before any weights load, when a role cannot fit."""
        if self._plan is None:
            with registry.LOAD_LOCK:  # the plan counts parameters on meta-device models: never beside a load
                self._plan = memplan.run_plan(self.config)
            self._swapper = memplan.swapper_for(self._plan)
            log.info(self._plan.summary())
            log.info(self._plan.llm_line())
        return self._plan

    @contextmanager
    def pipeline(self, concurrency: int) -> Iterator[lanes_mod.Lanes]:
        """Several runs in flight (one thread each): GPU steps on one worker, a local LLM on one more, a
        remote LLM called from every run's thread at once (``lanes.py``). Ctrl-C is handled here."""
        if concurrency <= 1:
            yield self.lanes
            return
        plan = self.plan()
        kind = lanes_mod.llm_lane_kind(plan.llm, self.config.llm.device, plan.free_bytes is not None)
        slots = self.config.generator.max_in_flight if self._gate() is not None else None
        old, self.lanes = self.lanes, lanes_mod.pipeline_lanes(kind, self.stop_requested, slots)
        try:
            with self._stop.call(), self._stop.sigint(self.warn):  # a new pass: an earlier stop request is spent
                yield self.lanes
        except BaseException:
            self.lanes.close(wait=False)  # stopped (a second Ctrl-C: steps in progress are abandoned) or failed
            raise
        else:
            self.lanes.close()
        finally:
            self.last_lanes, self.lanes = self.lanes, old  # kept for their busy figures (scripts/bench_batch.py)

    def _gate(self) -> lanes_mod.Gate | None:
        """A served generator's steps run in the caller's thread, ``max_in_flight`` at once, off the GPU lane."""
        gen = self._backends["generator"]
        if not (getattr(gen, "remote", False) if gen is not None else registry.is_remote("generator", self.config)):
            return None
        return lanes_mod.Gate("generator", self.config.generator.max_in_flight, self.stop_requested)

    def job_log(self, run: Run, target: Any) -> JobLog:
        return JobLog(run, target, stop_requested=self.stop_requested, budget=self.budget)

    def loaded(self, role: str) -> Any:
        """The role's backend if it is built already, else None (builds nothing)."""
        return self._backends[role]

    def request_stop(self) -> None:
        """Stop every run of this Refiner after its current step (as a first Ctrl-C does): each raises
        Interrupted, its finished steps saved. From the moment this returns no step starts (a step queued on a
        lane, a load, a prompt not begun); the next ``refine``, ``enhance`` or batch pass clears it."""
        self._stop.request()

    def stop_requested(self) -> bool:
        """A stop was requested and the calls or passes it stops are still in progress."""
        return self._stop.requested()

    def model_name(self, role: str) -> str:
        b = self._backends[role]
        return f"{getattr(b, 'backend', type(b).__name__)}:{getattr(b, 'model_id', '?')}"

    def _emit(self, ev: Event) -> None:
        if self.on_event is not None:
            with self._emit_lock:  # runs of a pipelined batch report from several threads
                self.on_event(ev)

    def warn(self, message: str, k: int | None = None) -> None:
        """A warning: logged, and shown as a ``warning`` event (one ``warning:`` line in the CLI)."""
        log.warning(message)
        self._emit(Event("warning", round=k, data={"message": message}))

    def run_id(self, prompt: str, config_hash: str | None = None) -> str:
        return run_id(prompt, config_hash or self.config.hash())

    def run_dir(self, prompt: str, config: Config | None = None) -> Path:
        """The run's folder: named by the config hash, or an existing folder named by an earlier hash (made
        before runtime knobs left the hash, or with other runtime knobs), which is resumed with a warning."""
        d, earlier = find_run_dir(self.out, prompt, config or self.config)
        if earlier:
            self.warn(f"resuming {d.name}, a run folder named by the earlier config hash")
        return d

    def token_budget(self) -> int:
        """The loaded generator's budget; before it loads, the config's, else what the backend class says before
        loading (``budget_before_load(config)``: the diffusers backends read the model's files)."""
        gen = self._backends["generator"]
        if gen is not None and getattr(gen, "max_prompt_tokens", None):
            return int(gen.max_prompt_tokens)
        g = self.config.generator
        if g.max_prompt_tokens:
            return int(g.max_prompt_tokens)
        before_load = getattr(registry.resolve("generator", g.backend), "budget_before_load", None)
        if before_load is None:
            raise ConfigError(f"the generator backend '{g.backend}' does not say its token budget before it loads; "
                              "set generator.max_prompt_tokens")
        return int(before_load(self.config))

    def tokens_per_word(self) -> float | None:
        """The loaded generator's measured tokens per English word (None: steps' fallback rate)."""
        gen = self._backends["generator"]
        fn = getattr(gen, "tokens_per_word", None)
        return fn() if callable(fn) else None

    # ------------------------------------------------------------ public API
    def enhance(self, prompt: str) -> "EnhanceResult":
        """Step 1 + one step-back rewrite, no video (for closed video models): ``enhancers.phyt2v_enhance``."""
        from .enhancers import phyt2v_enhance

        with self._stop.call():
            return phyt2v_enhance(self, prompt)

    def refine(self, prompt: str, *, fresh: bool = False, run_id: str | None = None,
               seed: int | None = None) -> RefineResult:  # seed: the run's own loop.seed (a batch item's; hashed)
        prompt, cfg = validate_prompt(prompt), with_seed(self.config, seed)
        store = RunStore(self.out / run_id if run_id else self.run_dir(prompt, cfg))
        if fresh or not self._finished(store):  # a finished run loads nothing: no plan (it may not fit this GPU)
            self.plan()
        with self._stop.call():  # outside a pass and any other run: an earlier stop request is spent
            with self._load_lock:  # runs started earlier go first on a shared lane (lanes.Lane)
                self._runs_started += 1
                self._local.order = self._runs_started
            with FolderLock(store.dir):  # a second process on this folder gets RunLocked (exit 2)
                return self._refine_locked(prompt, store, fresh, cfg)

    def _refine_locked(self, prompt: str, store: RunStore, fresh: bool, cfg: Config) -> RefineResult:
        if fresh and any(p.name != FolderLock.NAME for p in store.dir.iterdir()):
            backup = store.dir.with_name(f"{store.dir.name}.old-{int(time.time())}")
            backup.mkdir()
            for p in store.dir.iterdir():  # the folder (and its lock, held) stays
                if p.name != FolderLock.NAME:
                    p.rename(backup / p.name)
            self.warn(f"--fresh: the earlier run was moved to {backup}")
        rec = store.load()
        if rec is not None and rec.status == "finished":
            lost = lost_videos(rec, store)
            if not lost:
                self._emit(Event("run_end", data={"resumed": True, "already_finished": True}))
                return RefineResult(rec, store.dir)
            k, problem = lost[0]
            where = f"the video of round {k}" if k else "the final render's video"
            self.warn(f"{store.dir} finished, but {where} is {problem}: generating it again")
        self.plan()  # planned in refine() unless the run looked finished there
        resumed = rec is not None
        if rec is None:
            rec = RunRecord(run_id=store.dir.name, prompt=prompt, config_hash=cfg.hash())
        store.dir.mkdir(parents=True, exist_ok=True)
        store.save_config(cfg.effective())
        rec.status, rec.error = "running", None
        rec.invocations.append({"time": now(), "pid": os.getpid(), "host": socket.gethostname(),
                                "config_hash": cfg.hash(), "runtime": self.config.runtime()})
        rec.memory_plan = self._plan.as_dict()
        store.save(rec)
        self._emit(Event("run_start", data={"run_dir": str(store.dir), "resumed": resumed,
                                            "rounds_done": len(rec.rounds), "memory_plan": self._plan.summary(),
                                            "llm": dict(self._plan.llm), "llm_line": self._plan.llm_line()}))
        t_run, calls_base = time.perf_counter(), rec.timings.get("model_calls_s", 0.0)
        with self._stop.sigint(self.warn):
            try:
                self._run(Run(rec, store, calls_base=calls_base, order=self._local.order, seed=cfg.loop.seed))
            except KeyboardInterrupt:
                rec.status = "interrupted"
                store.save(rec)
                raise Interrupted(f"interrupted; finished steps are saved in {store.dir}. "
                                  "Run the same command again to resume.") from None
            except Interrupted:
                rec.status = "interrupted"
                store.save(rec)
                raise
            except (InputError, ConfigError) as e:
                if not resumed and rec.rules is None and not rec.rounds and rec.enhancement is None:
                    shutil.rmtree(store.dir, ignore_errors=True)  # refused before any work: no run folder
                    raise
                rec.status = "failed"
                rec.error = StepError(step=self.current_step, kind=type(e).__name__, message=str(e))
                store.save(rec)
                raise
            except Exception as e:
                err = e if isinstance(e, Phyt2vError) else BackendError(
                    f"{self.current_step or 'the run'} failed: {type(e).__name__}: {first_line(e)} "
                    f"(finished steps are kept in {store.dir}; PHYT2V_DEBUG=1 shows the traceback)")
                rec.status = "failed"
                rec.error = StepError(step=getattr(err, "step", "") or self.current_step, kind=type(e).__name__,
                                      message=str(err), raw=getattr(err, "raw", None),
                                      expected=getattr(err, "expected", []))
                store.save(rec)
                if err is e:
                    raise
                raise err from e
            finally:
                if store.dir.is_dir():
                    rec.timings["last_session_s"] = round(time.perf_counter() - t_run, 3)
                    rec.timings["model_calls_s"] = round(calls_base + store.calls.total_s, 3)
                    store.save(rec)
        self._emit(Event("run_end", data={"resumed": resumed}))
        return RefineResult(rec, store.dir)

    # ------------------------------------------------------------ the steps
    @property
    def current_step(self) -> str:
        """The step this thread's run is in (each prompt of a pipelined batch has its own thread)."""
        return getattr(self._local, "step", "")

    @current_step.setter
    def current_step(self, value: str) -> None:
        self._local.step = value

    def execute(self, step: rounds.Step, run: Run, target: Any) -> None:
        """Run one step on its lane, then record it on disk (``_step_done``) before anything else."""
        k = target.index if isinstance(target, RoundRecord) else None
        label = f"final {step.name}" if isinstance(target, FinalRender) else step.name

        def work() -> None:
            with self._emit_lock:  # a stop requested before this point is seen: the step does not start
                self._stop.check(label, run.store.dir)
                self.current_step = label
                self._emit(Event("step_start", round=k, step=label, run=run.store.dir.name))
            t0 = time.perf_counter()
            data = step.body(self, run, target) or {}
            self._step_done(run, target, step.name, label, time.perf_counter() - t0, data)

        self.current_step = label  # this run's thread names the step too (work may run on a lane's thread)
        self.lanes.call(step.lane, work, priority=run.order)

    def _step_done(self, run: Run, target: Any, name: str, label: str, seconds: float,
                   data: dict[str, Any]) -> None:
        rec, store = run.rec, run.store
        if target is not None:
            target.done.append(name)
            target.timings[f"{name}_s"] = round(seconds, 4)
        if isinstance(target, RoundRecord):
            store.write_round(target)
        rec.best_round = best_round(rec.rounds)
        rec.timings["model_calls_s"] = round(run.calls_base + store.calls.total_s, 3)  # survives SIGKILL
        store.save(rec)
        self._emit(Event("step_end", round=target.index if isinstance(target, RoundRecord) else None, step=label,
                         data={"seconds": seconds, **data}, run=store.dir.name))
        if self._stop.requested():
            raise Interrupted(f"stopped after {label}; finished steps are saved in {store.dir}. "
                              "Run the same command again to resume.")

    def denoise_callback(self, run: Run, k: int | None) -> Callable[[int, int], None]:
        name = run.store.dir.name
        return lambda i, n: self._emit(Event("denoise", k, "generate", {"i": i, "total": n}, run=name))

    def _run(self, run: Run) -> None:
        rec = run.rec
        self.backend("generator")
        run.budget = rec.token_budget = self.token_budget()
        rec.models["generator"] = self.model_name("generator")
        if not rec.rounds:
            self.current_step = "check prompt"
            rounds.check_prompt(self, run)
        for role in ("llm", "captioner", "scorer"):
            self.backend(role)
            rec.models[role] = self.model_name(role)
        rec.scorer_quantized = (getattr(self.backend("scorer"), "quantization", None) or "none") != "none"  # as loaded
        rounds.drive(self, run)

    def _finished(self, store: RunStore) -> bool:
        """The run is finished with every video in place (read without its lock: run.json is replaced atomically)."""
        try:
            rec = store.load()
        except Phyt2vError:
            return False
        return rec is not None and rec.status == "finished" and not lost_videos(rec, store)

    def refine_prompt(self, run: Run, rnd: RoundRecord) -> Refinement:
        cfg, gen, rec, budget = self.config.loop, self.backend("generator"), run.rec, run.budget
        history = steps.history_text(rec.rounds) if cfg.history_in_refine else ""
        llm = self.backend("llm")

        def ask(note: str) -> Refinement:
            return steps.refine_prompt(llm, history=history + (note + "\n" if note else ""), user_prompt=rec.prompt,
                                       prompt=rnd.prompt, rules=rec.rules, mismatch=rnd.mismatch,
                                       budget_tokens=budget, log=run.store.calls, retries=cfg.parse_retries,
                                       tokens_per_word=self.tokens_per_word())

        return rewrite_within_budget(ask, gen.count_tokens, budget)[0]  # still over: round k+1 warns at generate
