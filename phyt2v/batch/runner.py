"""Batch runs: the refine loop over every prompt of a source, resumable, shardable.

One batch directory per (source, effective config hash); each prompt is an ordinary refine run inside
it (``runs/<id>-<slug>/``), and a line per finished prompt is appended and flushed to the results file
(format: ``batchdir.py``). Rerunning the same command skips finished prompts (no model is loaded for
them), resumes an interrupted prompt from its last finished step, and retries failed prompts.

Shards (``shards.py``): ``--shard i/n`` by hand, or one shard per process under ``accelerate launch`` / ``torchrun``
(accelerate's process state). Shard i takes prompts i, i+n, i+2n, ... and writes its own file; when
every prompt is done the shard files are merged into ``results.jsonl`` in source order.

Several processes on one batch folder (N GPUs, no ``--shard``) split the prompts: each prompt's run folder
is locked while a process works on it (``locks.FolderLock``); a prompt locked by another process is
skipped and revisited until every prompt has a line; the line is appended under the run's lock and the
results file's writers lock, so each prompt is computed and written once.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Config, hash_of
from ..errors import InputError, Interrupted, Phyt2vError, first_line
from ..runtime.lanes import remote_llm
from ..store.files import append_jsonl, atomic_write_json, atomic_write_text, now, slugify
from ..store.locks import FolderLock, writers_lock
from ..store.record import RunRecord, RunStore
from . import folder as batchdir
from . import triage
from .folder import RESULT_SCHEMA_VERSION
from .pipelined import pipelined_pass
from .shards import Shard

DEFAULT_REMOTE_CONCURRENCY = 4


# ---------------------------------------------------------------- the batch

def batch_key(source: Any, config_hash: str) -> str:
    ident = {"source": source.name, "kind": source.kind, "options": source.options, "config": config_hash}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]


def batch_dir_for(source: Any, config: Config, out: Path) -> tuple[Path, bool]:
    """The batch folder, and whether it is an existing folder named by the legacy config hash."""
    new = Path(out) / f"{slugify(source.name, 32)}-{batch_key(source, config.hash())}"
    if new.exists():
        return new, False
    legacy = config.legacy_hash()
    old = Path(out) / f"{slugify(source.name, 32)}-{batch_key(source, legacy)}" if legacy else None
    if old is not None and batchdir.is_batch_dir(old):
        return old, True
    for d in sorted(Path(out).glob(f"{slugify(source.name, 32)}-*")):  # made with other runtime knobs
        if batchdir.is_batch_dir(d) and _same_batch(d, source, config):
            return d, True
    return new, False


def _same_batch(d: Path, source: Any, config: Config) -> bool:
    try:
        header = batchdir.read_batch(d)
    except Phyt2vError:
        return False
    src = header.get("source") or {}
    return ((src.get("name"), src.get("kind"), src.get("options")) == (source.name, source.kind, source.options)
            and hash_of(header.get("config")) == config.hash())


def run_id_for(item: Any) -> str:
    return f"{item.id}-{slugify(item.prompt, 40)}"


@dataclass
class BatchSummary:
    batch_dir: Path
    total: int                      # prompts selected (after --limit)
    mine: int                       # of those, this shard's
    already_done: int = 0           # finished before this invocation
    finished: int = 0               # finished now
    by_others: int = 0              # done meanwhile by other processes on this folder
    filtered: int = 0               # of those finished now, skipped by loop.min_physics (stop "not_physical")
    failed: list[dict[str, Any]] = field(default_factory=list)  # result lines of prompts that failed now
    interrupted: bool = False
    budget_stop: str | None = None  # why --max-cost stopped the batch (no job past it was started)
    merged: bool = False
    results_file: Path | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def tally(self, outcome: dict[str, Any] | str | None) -> bool:
        """Count one ``Batch.try_one`` outcome; True when the prompt is locked elsewhere (revisit it)."""
        if outcome is None:
            return True
        if outcome == "elsewhere":
            self.by_others += 1
        elif outcome["status"] == "finished":
            self.finished += 1
            self.filtered += outcome.get("stop_reason") == "not_physical"
        else:
            self.failed.append(outcome)
        return False


def result_line(item: Any, rec: RunRecord | None, run_dir: Path, batch_dir: Path, *, status: str,
                error: dict[str, Any] | None, wall_s: float, config_hash: str, shard: Shard) -> dict[str, Any]:
    rel = run_dir.relative_to(batch_dir).as_posix()
    rounds = []
    for r in (rec.rounds if rec else []):
        rounds.append({"index": r.index, "prompt": r.prompt, **_scores(r.scores, extra=True),
                       "video": f"{rel}/{r.video}" if r.video else None, "caption": r.caption,
                       "seed": r.seed, "draft": r.draft,
                       "candidates": [{"seed": c.seed, "video": f"{rel}/{c.video}", **_scores(c.scores)}
                                      for c in r.candidates]})
    final = None
    if rec is not None and rec.final is not None and rec.final.scores is not None:
        f = rec.final
        final = {"round": f.round, "prompt": f.prompt, "seed": f.seed, **_scores(f.scores, extra=True),
                 "video": f"{rel}/{f.video}" if f.video else None, "caption": f.caption}
    return {"schema_version": RESULT_SCHEMA_VERSION, "id": item.id, "index": item.index, "prompt": item.prompt,
            "meta": item.meta, "status": status, "run_id": run_dir.name, "run_dir": rel,
            "best_round": rec.best_round if rec else None, "stop_reason": rec.stop_reason if rec else None,
            "rounds": rounds, "final": final, "error": error,
            "physics": ({"score": rec.enhancement.physics_score, "physical": rec.enhancement.physical,
                         "extended_prompt": rec.enhancement.extended_prompt} if rec and rec.enhancement else None),
            "timings": {"wall_s": round(wall_s, 3),
                        "model_calls_s": (rec.timings.get("model_calls_s") if rec else None)},
            "config_hash": config_hash, "shard": [shard.index, shard.count], "finished": now("microseconds")}


def _scores(s: Any, extra: bool = False) -> dict[str, Any]:
    out = {"sa": s.sa if s else None, "pc": s.pc if s else None, "score": s.score if s else None}
    if extra:
        out["extra"] = dict(s.extra) if s else {}
    return out


class Batch:
    """``Batch(source, config, out=...).run()``; ``refiner`` may be passed in (tests, the Python API)."""

    def __init__(self, source: Any, config: Config, *, out: str | Path | None = None, limit: int | None = None,
                 shard: Shard | None = None, refiner: Any = None, concurrency: int | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None, max_cost: float | None = None):
        if limit is not None and limit < 1:
            raise InputError(f"--limit {limit}: pass a positive number of prompts")
        if max_cost is not None and (max_cost < 0 or config.generator.price_per_second is None):
            raise InputError(f"--max-cost {max_cost}: needs a non-negative amount and generator.price_per_second "
                             "(USD per second of video) to price each served job")
        self.max_cost = max_cost
        self.source, self.config = source, config
        self.items = source.items[:limit] if limit else list(source.items)
        self.shard = shard or Shard()
        self.dir, self.legacy_dir = batch_dir_for(source, config, Path(out if out is not None else config.out))
        self._refiner = refiner
        if concurrency is not None and concurrency < 1:
            raise InputError(f"--concurrency {concurrency}: pass a positive number of prompts in flight")
        self._concurrency = concurrency
        events = on_event or (lambda kind, data: None)
        lock = threading.RLock()

        def on_event_locked(kind: str, data: dict[str, Any]) -> None:
            with lock:  # prompts of a pipelined batch report from their own threads
                events(kind, data)

        self.on_event = on_event_locked
        self._since = now("microseconds")
        self.endpoint = triage.EndpointWatch()

    # ------------------------------------------------------------ files
    @property
    def results_file(self) -> Path:
        if self.shard.count == 1:
            return self.dir / batchdir.RESULTS_FILE
        return batchdir.shard_file(self.dir, self.shard.index, self.shard.count)

    def write_header(self) -> None:
        """batch.json and prompts.jsonl (identical content from every shard, written atomically); batch.json
        lists every invocation with its runtime settings (which are not part of the folder's identity)."""
        with writers_lock(self.dir / ".batch.lock"):  # batch.json is read, extended and replaced
            self._write_header()

    def _write_header(self) -> None:
        old = batchdir.read_batch(self.dir) if batchdir.is_batch_dir(self.dir) else None
        if old and old.get("source", {}).get("digest") not in (None, self.source.digest):
            self.on_event("warning", {"message": "the prompt source changed since this batch started; prompts "
                                                 "with the same position and text keep their results"})
        if self.legacy_dir:
            self.on_event("warning", {"message": f"resuming {self.dir.name}, a batch folder named by the earlier "
                                                 "config hash"})
        invocation = {"time": now("microseconds"), "pid": os.getpid(), "host": socket.gethostname(),
                      "shard": [self.shard.index, self.shard.count], "runtime": self.config.runtime()}
        header = {"schema_version": RESULT_SCHEMA_VERSION,
                  "source": {"name": self.source.name, "kind": self.source.kind,
                             "file": str(self.source.path) if self.source.path else None,
                             "digest": self.source.digest, "options": self.source.options,
                             "prompts": len(self.source.items), "skipped": list(self.source.skipped)},
                  "config_hash": self.config.hash(), "config": self.config.effective(),
                  "selected": len(self.items), "created": (old or {}).get("created") or now("microseconds"), "updated": now("microseconds"),
                  "invocations": [*(old or {}).get("invocations", []), invocation]}
        atomic_write_json(self.dir / batchdir.BATCH_FILE, header)
        lines = [json.dumps({"id": it.id, "index": it.index, "prompt": it.prompt, "meta": it.meta},
                            ensure_ascii=False) for it in self.source.items]
        atomic_write_text(self.dir / batchdir.PROMPTS_FILE, "\n".join(lines) + "\n")

    def done_ids(self) -> set[str]:
        return {pid for pid, line in batchdir.read_results(self.dir).items() if line.get("status") == "finished"}

    def merge(self) -> bool:
        """Write results.jsonl from every result file when all selected prompts have a line. Atomic."""
        lines = batchdir.read_results(self.dir)
        if any(it.id not in lines for it in self.items):
            return False
        with writers_lock(self.dir / batchdir.RESULTS_FILE):  # no append lands in the file being replaced
            lines = batchdir.read_results(self.dir)
            text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines.values())
            atomic_write_text(self.dir / batchdir.RESULTS_FILE, text)
        return True

    # ------------------------------------------------------------ running
    def concurrency(self) -> int:
        """Prompts in flight: as asked, else 4 with a remote LLM (its latency hides behind GPU work) and 1 with
        a local one (it would wait for the same GPU or CPU anyway)."""
        if self._concurrency is not None:
            return self._concurrency
        plan = getattr(self.refiner(), "plan", None)
        remote = callable(plan) and remote_llm(plan().llm)
        return DEFAULT_REMOTE_CONCURRENCY if remote else 1

    def refiner(self) -> Any:
        """The one Refiner of the batch (models load on its first use), writing runs into this folder."""
        if self._refiner is None:
            from ..loop.refiner import Refiner

            self._refiner = Refiner(self.config)
        self._refiner.out = self.dir / batchdir.RUNS_DIR
        return self._refiner

    def run(self) -> BatchSummary:
        t0 = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_header()
        mine = self.shard.take(self.items)
        done = self.done_ids()
        todo = [it for it in mine if it.id not in done]
        summary = BatchSummary(self.dir, total=len(self.items), mine=len(mine), already_done=len(mine) - len(todo),
                               results_file=self.results_file)
        k = self.concurrency() if todo else 1  # nothing to run: no plan (the refiner's plan decides a remote LLM)
        self.on_event("batch_start", {"dir": self.dir, "total": len(mine), "done": summary.already_done,
                                      "todo": len(todo), "shard": self.shard, "concurrency": k})
        self._since = now("microseconds")
        budget = self.budget() if self.max_cost is not None else None
        try:
            with self.refiner().pipeline(k) if k > 1 and len(todo) > 1 else nullcontext():
                pending, wait = todo, 0.2
                while pending:
                    if k > 1 and len(pending) > 1:
                        locked = pipelined_pass(self.try_one, pending, k, tally=summary.tally,
                                                request_stop=self.refiner().request_stop,
                                                stop_requested=self.refiner().stop_requested)
                    else:
                        locked = [it for it in pending if summary.tally(self.try_one(it))]
                    if locked and len(locked) == len(pending):
                        time.sleep(wait)  # every prompt left is in another process's hands
                        wait = min(wait * 2, 5.0)
                    else:
                        wait = 0.2
                    pending = locked
        except Interrupted:
            summary.interrupted = True
            summary.budget_stop = budget.refused if budget is not None else None
        finally:
            summary.wall_s = time.perf_counter() - t0
        if not summary.interrupted:
            summary.merged = self.merge()
        return summary

    def spent(self) -> float:
        """USD the served jobs of this batch's runs cost so far (recorded per job; in-flight jobs at their estimate)."""
        from ..store.record import run_cost

        runs = self.dir / batchdir.RUNS_DIR
        recs = [self._load_record(d) for d in sorted(runs.iterdir()) if d.is_dir()] if runs.is_dir() else []
        return sum(run_cost(r) for r in recs if r is not None)

    def budget(self) -> Any:
        """The --max-cost budget, given to the Refiner: each new served job is charged before it is created."""
        from ..loop.jobs import CostBudget

        budget = CostBudget(self.max_cost, self.spent())
        self.refiner().budget = budget
        return budget

    def try_one(self, item: Any) -> dict[str, Any] | str | None:
        """Run one prompt and append its line, holding its run folder's lock. None when another process
        holds it; ``"elsewhere"`` when another process already wrote this prompt's line meanwhile."""
        run_dir = self.dir / batchdir.RUNS_DIR / run_id_for(item)
        lock = FolderLock(run_dir)
        if not lock.try_acquire():
            return None
        try:
            rec = self._load_record(run_dir)
            if rec is not None and rec.status in ("finished", "failed") and self._has_line(item.id):
                return "elsewhere"
            line = self.run_one(item)
            append_jsonl(self.results_file, line, lock=True)
            self.on_event("prompt_end", {"item": item, "line": line})
            self.endpoint.check()  # the LLM failed every call of several prompts in a row: stop
            return line
        finally:
            lock.release()

    def _has_line(self, pid: str) -> bool:
        """A line for this prompt that counts as done for this invocation: finished, or written since it began."""
        line = batchdir.read_results(self.dir).get(pid)
        return line is not None and (line.get("status") == "finished" or str(line.get("finished")) >= self._since)

    def run_one(self, item: Any) -> dict[str, Any]:
        refiner = self.refiner()
        run_id = run_id_for(item)
        run_dir = self.dir / batchdir.RUNS_DIR / run_id
        self.on_event("prompt_start", {"item": item, "run_dir": run_dir})
        t0, mark, failure = time.perf_counter(), triage.calls_mark(run_dir), None
        try:
            res = refiner.refine(item.prompt, run_id=run_id, seed=self.item_seed(item))
            rec, status, error = res.record, "finished", None
        except Interrupted:
            raise
        except Phyt2vError as e:
            if triage.stops_batch(e):
                raise  # not this prompt's fault: every other prompt would fail the same way
            failure = e
            rec = self._load_record(run_dir)
            err = rec.error if rec is not None else None  # the loop records the failing step
            status = "failed"
            error = ({"step": err.step, "kind": err.kind, "message": err.message} if err else
                     {"step": getattr(e, "step", "") or getattr(refiner, "current_step", ""),
                      "kind": type(e).__name__, "message": first_line(e)})
        self.endpoint.note(failure, triage.llm_answered(run_dir, mark))
        return result_line(item, rec, run_dir, self.dir, status=status, error=error,
                           wall_s=time.perf_counter() - t0, config_hash=self.config.hash(), shard=self.shard)

    def item_seed(self, item: Any) -> int | None:
        """The prompt's own video seed where its source gives one (``options["item_seeds"]``, LVD's benchmark):
        ``loop.seed`` + ``meta["seed"]``; None: ``loop.seed``."""
        if not self.source.options.get("item_seeds"):
            return None
        seed = item.meta.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"prompt {item.id}: its meta has no integer 'seed' ({seed!r}), which its source promises")
        return self.config.loop.seed + seed

    @staticmethod
    def _load_record(run_dir: Path) -> RunRecord | None:
        try:
            return RunStore(run_dir).load()
        except Phyt2vError:
            return None
