"""One run: its folder name, its progress (``Run``), its result (``RefineResult``) and events, and what a step may
ask of the host that drives it (``Host``).

A step (``rounds.py``) is a function ``body(host, run, target)``. ``host`` is the ``Refiner``; the steps see it
only through :class:`Host`, the public calls listed here, never its private state.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from ..config import hash_of
from ..errors import InputError, Phyt2vError
from ..store.files import slugify
from ..store.record import FinalRender, RoundRecord, RunRecord, RunStore


def validate_prompt(prompt: Any, command: str = "refine") -> str:
    """The prompt with its white space folded; InputError for a non-string or an empty prompt (its example names
    ``command``: the CLI command the user ran)."""
    if not isinstance(prompt, str):
        raise InputError(f"the prompt must be text, not {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise InputError('the prompt is empty; pass the scene to generate, e.g. '
                         f'phyt2v {command} "a rubber ball is dropped onto a wooden floor"')
    return text


@dataclass
class Event:
    kind: str  # run_start | step_start | step_end | denoise | round_end | warning | run_end
    round: int | None = None
    step: str | None = None  # a round step, a run step (rules), "load <role>", or "final <step>" (drafts)
    data: dict[str, Any] = field(default_factory=dict)
    run: str | None = None  # the run's folder name (several runs are in flight in a pipelined batch)


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
    def final(self) -> FinalRender | None:
        """With draft rounds: the best round's prompt rendered and scored at full settings (the product)."""
        return self.record.final

    @property
    def best_video(self) -> Path | None:
        """The product: the final render with draft rounds, else the best round's video."""
        f = self.record.final
        if f is not None and f.video and f.scores is not None:
            return self.run_dir / f.video
        b = self.best
        return self.run_dir / b.video if b and b.video else None

    @property
    def stop_reason(self) -> str | None:
        return self.record.stop_reason


def with_seed(config: Any, seed: int | None) -> Any:
    """``config`` with ``loop.seed`` set to ``seed`` (None: ``config`` itself). A run with its own seed (a batch item
    of LVD's benchmark) is hashed, named and recorded as a run of this config: the seed is part of its identity."""
    if seed is None or seed == config.loop.seed:
        return config
    return config.model_copy(update={"loop": config.loop.model_copy(update={"seed": int(seed)})})


def run_id(prompt: str, config_hash: str) -> str:
    """A run's folder name: the prompt's slug and a digest of the prompt and the config hash."""
    digest = hashlib.sha256(f"{prompt}\n{config_hash}".encode()).hexdigest()[:8]
    return f"{slugify(prompt)}-{digest}"


def find_run_dir(out: Path, prompt: str, config: Any) -> tuple[Path, bool]:
    """The folder of the run of ``prompt`` under ``out``, and whether it is an existing folder named by an earlier
    config hash: the legacy hash (before runtime knobs left the hash), or any folder whose saved config has this
    config's hash (made with other runtime knobs)."""
    new = out / run_id(prompt, config.hash())
    if new.exists():
        return new, False
    legacy = config.legacy_hash()
    old = out / run_id(prompt, legacy) if legacy else None
    if old is None or not old.is_dir():
        old = next((d for d in sorted(out.glob(f"{slugify(prompt)}-*")) if _same_run(d, prompt, config)), None)
    return (old, True) if old is not None else (new, False)


def _same_run(d: Path, prompt: str, config: Any) -> bool:
    if not re.fullmatch(r".*-[0-9a-f]{8}", d.name) or not (d / "config.json").is_file():
        return False
    try:
        saved = json.loads((d / "config.json").read_text(encoding="utf-8"))
        rec = RunStore(d).load()
    except (OSError, ValueError, Phyt2vError):
        return False
    return rec is not None and rec.prompt == prompt and hash_of(saved) == config.hash()


@dataclass
class Run:
    """One run in progress: its record and folder (several are in flight in a pipelined batch)."""

    rec: RunRecord
    store: RunStore
    budget: int = 0
    calls_base: float = 0.0  # model-call seconds of earlier invocations
    order: int = 0  # when it started, among the runs of this Refiner (its priority on a shared lane)
    seed: int | None = None  # the run's video seed (loop.seed, or a batch item's own: ``with_seed``)


class Host(Protocol):
    """What the steps of ``rounds.py`` and ``renders.py`` call on the object that drives them (the Refiner)."""

    config: Any
    on_round: Callable[[RoundRecord], None] | None

    def backend(self, role: str) -> Any:
        """The role's backend, built (loaded) on first use."""

    def loaded(self, role: str) -> Any:
        """The role's backend if it is built already, else None (nothing is loaded)."""

    def warn(self, message: str, k: int | None = None) -> None:
        """A warning line for the user (and the log), tied to round ``k`` when given."""

    def execute(self, step: Any, run: Run, target: Any) -> None:
        """Run one step on its lane and record it on disk before anything else."""

    def refine_prompt(self, run: Run, rnd: RoundRecord) -> Any:
        """Step 3: the refined prompt of round ``rnd``, within the generator's token budget."""

    def token_budget(self) -> int:
        """The generator's token budget (before it loads: what its files or the config say)."""

    def tokens_per_word(self) -> float | None:
        """The loaded generator's tokens per English word (None: the steps' fallback rate)."""

    def denoise_callback(self, run: Run, k: int | None) -> Callable[[int, int], None]:
        """The per-denoising-step progress callback of a render of round ``k``."""

    def job_log(self, run: Run, target: Any) -> Any:
        """A served generator's ``job_log`` for the render of ``target`` (a RoundRecord or FinalRender)."""
