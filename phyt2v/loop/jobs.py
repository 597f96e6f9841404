"""The loop's side of a served generator's jobs: ``JobLog`` records each job in the round (or final render) record
and saves run.json atomically before the backend waits on it, finds the job a killed run left behind, checks the
stop switch while the backend waits, and charges each new job to the batch's cost budget (``CostBudget``,
``phyt2v batch --max-cost``) before it is created."""

from __future__ import annotations

import threading
from typing import Any, Callable

from ..errors import BudgetExceeded, Interrupted
from ..store.record import JobRecord
from .run import Run


class CostBudget:
    """USD a batch may spend on served videos: ``spent`` (the batch's records when it started) plus every job
    charged since. ``charge`` refuses a job that would pass ``limit``: it is never created."""

    def __init__(self, limit: float, spent: float = 0.0):
        self.limit, self.spent = float(limit), float(spent)
        self.refused: str | None = None
        self._lock = threading.Lock()

    def charge(self, cost: float) -> None:
        with self._lock:
            if self.spent + cost > self.limit + 1e-9:
                self.refused = (f"the next video (~${cost:.2f}) would pass --max-cost ${self.limit:.2f} "
                                f"(${self.spent:.2f} spent)")
                raise BudgetExceeded(f"stopped: {self.refused}; no job was started. Finished steps are saved: run "
                                     "again with a larger --max-cost to resume.")
            self.spent += cost


class JobLog:
    """What ``generate(..., job_log=)`` of a served generator calls: ``find(seed)``, ``record(seed, id, ...)``,
    ``update(seed, ...)``, ``check_stop()``, ``charge(usd)``. ``target`` is the RoundRecord or FinalRender."""

    def __init__(self, run: Run, target: Any, *, stop_requested: Callable[[], bool] = lambda: False,
                 budget: CostBudget | None = None):
        self.run, self.target = run, target
        self.stop_requested, self.budget = stop_requested, budget
        self._lock = threading.Lock()  # the seeds of a round report from their own threads

    def find(self, seed: int) -> dict[str, Any] | None:
        job = self._job(seed)
        return job.model_dump() if job is not None else None

    def _job(self, seed: int) -> JobRecord | None:
        return next((j for j in reversed(self.target.jobs) if j.seed == seed), None)

    def record(self, seed: int, job_id: str, **info: Any) -> None:
        """A new job, on disk before anything waits on it (it replaces the seed's earlier, finished one); the
        round's jobs stay in seed order so run.json does not depend on which seed's thread came first."""
        with self._lock:
            self.target.jobs = [j for j in self.target.jobs if j.seed != seed]
            self.target.jobs.append(JobRecord(seed=seed, id=job_id, **info))
            self.target.jobs.sort(key=lambda j: j.seed)  # seed order, whichever thread's job was created first
            self.run.store.save(self.run.rec)

    def update(self, seed: int, **info: Any) -> None:
        with self._lock:
            job = self._job(seed)
            if job is None:
                return
            for k, v in info.items():
                setattr(job, k, v)
            self.run.store.save(self.run.rec)

    def check_stop(self) -> None:
        if self.stop_requested():
            where = self.run.store.dir
            raise Interrupted(f"stopped while waiting for the served video; its job is recorded in {where}: run the "
                              "same command again to resume it (it is not created again)")

    def charge(self, cost: float) -> None:
        if self.budget is not None:
            self.budget.charge(cost)
