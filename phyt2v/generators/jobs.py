"""The life of one served video job, shared by the served generators (``openai``: the Videos API, ``veo``: Veo
through google-genai): create, wait with backoff, download atomically, delete past the deadline.

A backend (``JobGenerator`` subclass) says how to ``create`` a job, read its ``state``, ``download`` its video and
``delete`` it; this module does the rest, the same way for both:

- The job is recorded in the run (the loop's ``job_log``: ``record`` saves run.json atomically) right after it is
  created and before any wait, so a run killed while the server renders resumes by polling the same job: a served
  video costs GPU-minutes or money, and a resume never creates it twice. A recorded job that completed is
  downloaded, not re-run; one the server no longer knows (404) is created again, with a warning.
- Requests are retried ``max_retries`` times on 408/429/5xx, timeouts and connection errors (429 waits its
  Retry-After, up to a minute); polls wait ``poll_s`` at first, 1.5x longer each time, at most 8x.
- ``timeout_s`` is a deadline on the whole job; past it the job is deleted where the API allows, and the step fails
  in one line that says so. A stop request (Ctrl-C) ends the wait at once; the job stays recorded for resume.
- A failed job (``status: failed``; Veo: an error, or every video filtered) raises ``JobFailed`` naming the
  server's code and message.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BackendError, InputError, JobFailed
from ..roles import GeneratedVideo, StepCallback
from ..runtime.deadline import one_line, retry_delay
from ..store import redact
from ..store.files import atomic_write_bytes
from ..store.video_io import probe, video_problem

log = logging.getLogger("phyt2v")

POLL_GROWTH, POLL_CAP = 1.5, 8.0
DONE = ("completed", "failed")
RESTART = ("failed", "deleted", "gone", "timed_out")  # a recorded job in one of these is not resumed


class JobGone(Exception):
    """The server does not know this job (HTTP 404): it expired, was deleted, or the server restarted."""


class Transient(Exception):
    """A request failure worth retrying: ``kind`` says what (``HTTP 503``, ``timeout``), ``retry_after`` seconds."""

    def __init__(self, kind: str, retry_after: float | None = None):
        super().__init__(kind)
        self.kind, self.retry_after = kind, retry_after


@dataclass
class JobState:
    """What a poll says: ``status`` queued | in_progress | completed | failed, ``progress`` 0-100 (None: not
    reported), the server's error, and its whole reply (``raw``) for ``download``."""

    status: str
    progress: float | None = None
    code: str | None = None
    message: str | None = None
    raw: Any = field(default=None, repr=False)


class Deadline:
    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def retry_after_s(value: Any) -> float | None:
    """A Retry-After header in seconds (its HTTP-date form is not used by these servers: ignored)."""
    try:
        return max(0.0, float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def pause(seconds: float, job_log: Any = None) -> None:
    """Sleep ``seconds``, checking the loop's stop switch (``job_log.check_stop``) every 0.1 s."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        if job_log is not None:
            job_log.check_stop()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))


class JobGenerator:
    """Base of the served generators: ``generate``/``generate_many`` run one job per seed, at most
    ``max_in_flight`` at once in this process. Subclasses set ``backend`` and implement ``create``, ``state``,
    ``download`` and ``delete``; ``self.settings`` is the GeneratorConfig."""

    backend = "served"
    remote = True            # no local weights: the memory plan counts 0 bytes, lanes give it no GPU worker
    takes_job_log = True     # the loop passes ``job_log`` (record the job before waiting; resume it)
    supports_many = True     # generate_many: one job per seed, concurrently

    def __init__(self, settings: Any, *, max_in_flight: int):
        self.settings = settings
        self.timeout_s, self.max_retries, self.poll_s = settings.timeout_s, settings.max_retries, settings.poll_s
        self.backoff_s = 1.0
        self.price = settings.price_per_second
        self.max_in_flight = max_in_flight
        self._slots = threading.BoundedSemaphore(max_in_flight)

    # ---------------------------------------------------------------- what a backend implements
    def create(self, prompt: str, seed: int, overrides: dict[str, Any], job_log: Any) -> tuple[str, bool, Any]:
        """Start a job: (its id, whether the seed was sent, the creation reply)."""
        raise NotImplementedError

    def state(self, job_id: str, job_log: Any) -> JobState:
        """Its status now; raises JobGone when the server does not know it."""
        raise NotImplementedError

    def download(self, job_id: str, state: JobState, job_log: Any) -> bytes:
        """The finished video's bytes; raises JobGone when they are gone."""
        raise NotImplementedError

    def delete(self, job_id: str) -> bool:
        """Delete the job on the server; False where the API has no delete (or it failed)."""
        return False

    def requested_seconds(self, overrides: dict[str, Any]) -> float:
        """Seconds of video a job asks for (the cost estimate before it runs)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- requests
    def retrying(self, what: str, fn: Callable[[], Any], job_log: Any = None) -> Any:
        """``fn()``, retried ``max_retries`` times on ``Transient`` failures with doubling backoff."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return fn()
            except Transient as e:
                if attempts > self.max_retries:
                    raise BackendError(self.line(f"{what} failed: {e.kind} after {attempts} attempt(s); check that "
                                                 "the server is up, or raise generator.max_retries")) from None
                delay = retry_delay(self.backoff_s, attempts, e.retry_after)
                log.warning("%s", self.line(f"{what}: {e.kind}; retry {attempts}/{self.max_retries} in {delay:.2f}s"))
                pause(delay, job_log)

    def line(self, text: str) -> str:
        return redact.scrub(f"generator {self.backend} ({self.model_id}): {text}")

    # ---------------------------------------------------------------- the job's life
    def generate(self, prompt: str, *, seed: int, out_path: Path, on_step: StepCallback | None = None,
                 overrides: dict[str, Any] | None = None, job_log: Any = None) -> GeneratedVideo:
        return self.generate_many(prompt, seeds=[seed], out_paths=[out_path], on_step=on_step, overrides=overrides,
                                  job_log=job_log)[0]

    def generate_many(self, prompt: str, *, seeds: list[int], out_paths: list[Path],
                      on_step: StepCallback | None = None, overrides: dict[str, Any] | None = None,
                      batch_size: int = 0, job_log: Any = None) -> list[GeneratedVideo]:
        """One job per seed, up to ``max_in_flight`` at once (``batch_size`` is the local backends' knob: unused).
        ``on_step(p, 100)`` reports the mean progress of the jobs."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("generator: empty prompt; pass the text to turn into a video")
        if len(seeds) != len(out_paths) or not seeds:
            raise InputError(f"generator: {len(seeds)} seeds for {len(out_paths)} output paths")
        overrides = self.check_overrides(overrides or {})
        progress = [0.0] * len(seeds)
        lock = threading.Lock()

        def step_of(i: int) -> StepCallback | None:
            if on_step is None:
                return None

            def report(done: int, total: int) -> None:
                with lock:
                    if total:
                        progress[i] = 100.0 * done / total
                    on_step(int(sum(progress) / len(progress)), 100) if total else on_step(0, 0)
            return report

        if len(seeds) == 1:
            return [self.one(prompt, seeds[0], Path(out_paths[0]), step_of(0), overrides, job_log)]
        with ThreadPoolExecutor(max_workers=min(len(seeds), self.max_in_flight),
                                thread_name_prefix="phyt2v-job") as pool:
            futs = [pool.submit(self.one, prompt, s, Path(p), step_of(i), overrides, job_log)
                    for i, (s, p) in enumerate(zip(seeds, out_paths))]
            return [f.result() for f in futs]

    def check_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return overrides

    def one(self, prompt: str, seed: int, path: Path, on_step: StepCallback | None, overrides: dict[str, Any],
            job_log: Any) -> GeneratedVideo:
        with self._slots:
            deadline = Deadline(self.timeout_s)
            held = job_log.find(seed) if job_log is not None else None
            job_id = held["id"] if held and held.get("status") not in RESTART else None
            seed_sent = bool(held.get("seed_sent", True)) if job_id else True
            if job_id:
                log.info("%s", self.line(f"resuming job {job_id} (seed {seed}) recorded by an earlier run"))
            recreated = 0
            while True:
                if job_id is None:
                    job_id, seed_sent, first = self.start(prompt, seed, overrides, job_log)
                else:
                    first = None
                try:
                    state = self.wait(job_id, seed, first, deadline, on_step, job_log)
                    if state.status == "failed":
                        self.note(job_log, seed, status="failed", error=f"{state.code}: {state.message}")
                        raise JobFailed(self.line(f"job {job_id} failed: {state.code or 'error'}: "
                                                  f"{one_line(state.message or 'no message', 300)}"), code=state.code)
                    data = self.download(job_id, state, job_log)
                except JobGone:
                    self.note(job_log, seed, status="gone")
                    if first is not None or recreated:  # created in this call and gone already: not a resume
                        raise BackendError(self.line(f"job {job_id} (seed {seed}) vanished from the server while it "
                                                     "ran (HTTP 404); check the server's log")) from None
                    log.warning("%s", self.line(f"the server no longer knows job {job_id} (seed {seed}): creating "
                                                "it again"))
                    recreated, job_id = 1, None
                    continue
                return self.save(data, path, seed, seed_sent, job_id, job_log, self.count_tokens(prompt))

    def start(self, prompt: str, seed: int, overrides: dict[str, Any], job_log: Any) -> tuple[str, bool, Any]:
        seconds = self.requested_seconds(overrides)
        cost = None if self.price is None else round(seconds * self.price, 6)
        if job_log is not None:
            job_log.check_stop()
            job_log.charge(cost or 0.0)  # BudgetExceeded before anything is created
        job_id, seed_sent, reply = self.create(prompt, seed, overrides, job_log)
        if job_log is not None:  # on disk before any wait
            job_log.record(seed, job_id, backend=self.backend, model=overrides.get("model") or self.model_id,
                           seconds=seconds, cost_usd=cost, seed_sent=seed_sent)
        return job_id, seed_sent, reply

    def wait(self, job_id: str, seed: int, first: JobState | None, deadline: Deadline,
             on_step: StepCallback | None, job_log: Any) -> JobState:
        interval = self.poll_s
        state = first
        while True:
            if state is None:
                state = self.retrying(f"polling job {job_id}", lambda: self.state(job_id, job_log), job_log)
            if on_step is not None:
                on_step(int(state.progress), 100) if state.progress is not None else on_step(0, 0)
            if state.status in DONE:
                return state
            if deadline.left() <= 0:
                deleted = self.delete(job_id)
                self.note(job_log, seed, status="deleted" if deleted else "timed_out")
                raise BackendError(self.line(f"job {job_id} did not finish within generator.timeout_s="
                                             f"{self.timeout_s:g}s (last status {state.status}); "
                                             + ("it was deleted on the server" if deleted else
                                                "the server could not delete it") +
                                             "; raise generator.timeout_s, or check the server's queue"))
            pause(min(interval, deadline.left()), job_log)
            interval = min(interval * POLL_GROWTH, self.poll_s * POLL_CAP)
            state = None

    def note(self, job_log: Any, seed: int, **info: Any) -> None:
        if job_log is not None:
            job_log.update(seed, **info)

    def save(self, data: bytes, path: Path, seed: int, seed_sent: bool, job_id: str, job_log: Any,
             tokens: int) -> GeneratedVideo:
        """The video written atomically to ``path`` (a half-written or non-mp4 download is refused)."""
        if not data:
            raise BackendError(self.line(f"job {job_id} completed but its content is empty"))
        atomic_write_bytes(path, data)
        if problem := video_problem(path):
            path.unlink(missing_ok=True)
            raise BackendError(self.line(f"job {job_id}'s content is not a usable mp4 ({problem})"))
        info = probe(path)
        seconds = info.num_frames / info.fps if info.fps else None
        cost = None if self.price is None or seconds is None else round(seconds * self.price, 6)
        self.note(job_log, seed, status="downloaded", seconds=seconds, cost_usd=cost)
        return GeneratedVideo(path=path, num_frames=info.num_frames, fps=round(info.fps), width=info.width,
                              height=info.height, seed=int(seed), prompt_tokens=tokens,
                              steps=getattr(self.settings, "steps", None),
                              guidance=getattr(self.settings, "guidance", None),
                              knobs={"job": job_id, "seed_sent": seed_sent})
