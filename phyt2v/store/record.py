"""The run record (``run.json``, versioned, validated) and the folder of one run: ``run.json`` written atomically,
round folders, ``calls.jsonl``. Files are written through ``files.py`` (atomic, scrubbed of secrets)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Phyt2vError, first_line
from ..schemas import Layout, Mismatch, PhysicsCoT, Refinement, Rules
from .files import append_jsonl, atomic_write_json, atomic_write_text, now

SCHEMA_VERSION = 1


# ---------------------------------------------------------------- run record

class StepError(BaseModel):
    step: str
    kind: str
    message: str
    raw: str | None = None
    expected: list[str] = Field(default_factory=list)


class RoundScores(BaseModel):
    sa: float = Field(ge=0.0, le=1.0)
    pc: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)
    extra: dict[str, Any] = Field(default_factory=dict)


class Candidate(BaseModel):
    """One seed's video of a best-of-N round (``loop.seeds`` > 1): every candidate is kept and scored."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    video: str  # path relative to the run directory
    video_info: dict[str, Any] | None = None
    scores: RoundScores | None = None


class JobRecord(BaseModel):
    """One served video job (``generator.backend`` openai or veo), written before any wait on it: a resumed run
    polls the same job instead of creating (and paying for) another."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    id: str = Field(description="the server's job id (openai) or operation name (veo)")
    backend: str
    model: str
    status: str = Field("created", description="created | queued | in_progress | completed | downloaded | failed "
                        "| deleted | gone")
    created: str = Field(default_factory=now)
    seconds: float | None = Field(None, description="seconds of video asked for (or received, once downloaded)")
    cost_usd: float | None = Field(None, description="seconds x generator.price_per_second: the estimate when "
                                   "created, the video's own length once downloaded")
    seed_sent: bool = True
    error: str | None = None


class BoxCheck(BaseModel):
    """One planned object at one keyframe: its planned box, the box the captioner found (None: not found) and their
    IoU (0 when not found). Boxes are ``[x0, y0, x1, y1]`` fractions of the frame."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    planned: list[float]
    measured: list[float] | None = None
    iou: float = Field(0.0, ge=0.0, le=1.0)


class LayoutCheck(BaseModel):
    """``loop.layout``: the layout a round was rendered (``guided``) and checked against, the boxes measured on its
    video at each keyframe (``keyframes`` follows ``plan.keyframes``), their mean IoU, the keyframe images the report
    draws on, and the layout Step 3 revised for the next round (None: kept)."""

    model_config = ConfigDict(extra="forbid")

    plan: Layout
    guided: bool = False
    keyframes: list[list[BoxCheck]] = Field(default_factory=list)
    mean_iou: float | None = None
    frames: list[str] = Field(default_factory=list, description="keyframe images, relative to the run directory")
    revised: Layout | None = None


class RoundRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=1)
    prompt: str
    prompt_tokens: int | None = None
    over_budget: bool = False
    video: str | None = None  # path relative to the run directory (the best candidate's with loop.seeds > 1)
    video_info: dict[str, Any] | None = None  # the generator's GeneratedVideo: frames, fps, truncated, knobs
    seed: int | None = None  # the seed of ``video``
    candidates: list[Candidate] = Field(default_factory=list, description="loop.seeds > 1: every seed's video "
                                        "and scores; the best one is the round's video, caption and scores")
    draft: bool = Field(False, description="rendered at the cheaper loop.draft settings")
    jobs: list[JobRecord] = Field(default_factory=list, description="served generator: each seed's job")
    caption: str | None = None
    scores: RoundScores | None = None
    mismatch: Mismatch | None = None
    refinement: Refinement | None = None
    refined_prompt: str | None = None
    layout: LayoutCheck | None = Field(None, description="loop.layout: the round's planned layout, the boxes "
                                       "measured on its video, their IoU, Step 3's revision")
    timings: dict[str, float] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    done: list[str] = Field(default_factory=list, description="finished steps, in order")


class FinalRender(BaseModel):
    """``loop.draft``: the best draft round's prompt rendered, captioned and scored again at full settings.
    Metrics, exports and the report use it instead of the draft round."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1, description="the draft round whose prompt (and seed) this renders")
    prompt: str
    seed: int
    video: str | None = None
    video_info: dict[str, Any] | None = None
    jobs: list[JobRecord] = Field(default_factory=list, description="served generator: the render's job")
    caption: str | None = None
    scores: RoundScores | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    done: list[str] = Field(default_factory=list, description="finished steps, in order")


def run_cost(rec: "RunRecord") -> float:
    """USD the run's served jobs cost (or, for a job not downloaded yet, are estimated to cost)."""
    targets = [*rec.rounds, *([rec.final] if rec.final is not None else [])]
    return sum(j.cost_usd or 0.0 for t in targets for j in t.jobs)


RunStatus = Literal["running", "finished", "failed", "interrupted"]


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    prompt: str
    status: RunStatus = "running"
    created: str = Field(default_factory=now)
    updated: str = Field(default_factory=now)
    config_hash: str
    token_budget: int | None = None
    rules: Rules | None = None
    rounds: list[RoundRecord] = Field(default_factory=list)
    best_round: int | None = None
    enhancement: PhysicsCoT | None = Field(None, description="PhyGDPO's CoT (loop.enhancer: phygdpo or "
                                           "loop.min_physics): physics score and the round-1 prompt")
    final: FinalRender | None = Field(None, description="loop.draft: the full-settings render of the best round")
    layout: Layout | None = Field(None, description="the planned dynamic scene layout (LVD's stage 1: boxes per "
                                  "object per keyframe, normalised), when the loop plans one")
    stop_reason: str | None = None
    error: StepError | None = None
    models: dict[str, str] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    invocations: list[dict[str, Any]] = Field(default_factory=list, description="one entry per command that "
                                              "worked on this run: time, pid, host, the config's runtime part")
    memory_plan: dict[str, Any] | None = Field(None, description="memplan: bytes per role, placement, LLM choice")
    scorer_quantized: bool = Field(False, description="the scorer ran quantized: not the published metric")


# ---------------------------------------------------------------- the run's folder

class CallLog:
    """Appends one JSON line per model call: role, backend, model id, inputs, output, duration."""

    def __init__(self, path: Path | None):
        self.path = path
        self.total_s = 0.0
        self.count = 0

    @contextmanager
    def call(self, role: str, backend: Any, step: str, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {
            "time": now(), "role": role, "step": step,
            "backend": getattr(backend, "backend", type(backend).__name__),
            "model_id": getattr(backend, "model_id", None), "inputs": inputs,
        }
        t0 = time.perf_counter()
        try:
            yield entry  # the caller sets entry["output"]
            entry["ok"] = True
        except BaseException as e:
            entry["ok"] = False
            entry["error"] = f"{type(e).__name__}: {e}"
            raise
        finally:
            entry["duration_s"] = round(time.perf_counter() - t0, 4)
            self.total_s += entry["duration_s"]
            self.count += 1
            if self.path is not None:
                append_jsonl(self.path, entry)


class RunStore:
    """The folder of one run: ``run.json``, ``config.json``, ``calls.jsonl``, ``round-<k>/``."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.record_path = self.dir / "run.json"
        self.calls = CallLog(self.dir / "calls.jsonl")

    def round_dir(self, k: int) -> Path:
        d = self.dir / f"round-{k}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def load(self) -> RunRecord | None:
        if not self.record_path.is_file():
            return None
        try:
            return RunRecord.model_validate_json(self.record_path.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as e:
            raise Phyt2vError(f"{self.record_path} is not a valid run record ({first_line(e)}); "
                              "move it away or pass --fresh to start this run again") from None

    def save(self, rec: RunRecord) -> None:
        rec.updated = now()
        atomic_write_text(self.record_path, rec.model_dump_json(indent=2) + "\n")

    def save_config(self, effective: dict[str, Any]) -> None:
        atomic_write_json(self.dir / "config.json", effective)

    def write_round(self, rnd: RoundRecord) -> None:
        """Human-readable copies of a round's artifacts beside the video."""
        d = self.round_dir(rnd.index)
        atomic_write_text(d / "prompt.txt", rnd.prompt + "\n")
        if rnd.caption is not None:
            atomic_write_text(d / "caption.txt", rnd.caption + "\n")
        if rnd.scores is not None:
            atomic_write_json(d / "scores.json", rnd.scores.model_dump())
        if rnd.mismatch is not None:
            atomic_write_json(d / "mismatch.json", rnd.mismatch.model_dump())
        if rnd.refined_prompt is not None:
            atomic_write_text(d / "refined_prompt.txt", rnd.refined_prompt + "\n")
        atomic_write_json(d / "round.json", {"timings": rnd.timings, "models": rnd.models,
                                             "prompt_tokens": rnd.prompt_tokens, "done": rnd.done})
