"""Test doubles for loop-logic unit tests and fault injection only (the real backends are tested
on real tiny models elsewhere). The generator still writes a real mp4."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from phyt2v.roles import GeneratedVideo, Scores
from phyt2v.store.video_io import write_video

RULES = {"objects": ["rubber ball", "wooden floor"],
         "rules": ["gravity pulls the ball down", "the ball bounces lower each time"],
         "expected_outcome": "the ball falls, bounces a few times, and comes to rest"}


def mismatch(*items: str) -> str:
    return json.dumps({"reasoning": "compared caption with rules", "mismatches": list(items)})


def refinement(prompt: str) -> str:
    return json.dumps({"principle": "energy is lost at each bounce", "prompt": prompt})


class ScriptedLLM:
    """Answers from a script: a list of replies (str or exception) or a function of the messages."""

    backend, model_id, supports_schema = "scripted", "scripted-1", False

    def __init__(self, script: list | Callable[[list], str]):
        self.script = script
        self.calls: list[list[dict]] = []

    def complete(self, messages, *, schema=None, max_tokens=None) -> str:
        self.calls.append(messages)
        if callable(self.script):
            reply = self.script(messages)
        else:
            if not self.script:
                raise AssertionError("ScriptedLLM ran out of replies")
            reply = self.script.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def step_of(messages: list[dict]) -> str:
    text = messages[-1]["content"] if messages[-1]["role"] == "user" else ""
    full = " ".join(m["content"] for m in messages)
    if "Step 1." in full:
        return "rules"
    if "Step 2." in full:
        return "mismatch"
    if "Step 3." in full:
        return "refine"
    if "Step back" in full:
        return "enhance"
    return text[:20]


def physics_llm(refined: list[str] | None = None, mismatches: list[list[str]] | None = None):
    """A well-behaved LLM: valid JSON for each step; refined prompts from a list."""
    refined = list(refined or [f"refined prompt number {i}" for i in range(1, 20)])
    mismatches = list(mismatches or [])

    def answer(messages):
        step = step_of(messages)
        if step == "rules":
            return json.dumps(RULES)
        if step == "mismatch":
            return mismatch(*(mismatches.pop(0) if mismatches else ["the ball floats"]))
        return refinement(refined.pop(0))

    return ScriptedLLM(answer)


class FakeGenerator:
    backend, model_id, max_prompt_tokens = "fake", "fake-gen", 40

    def __init__(self, on_generate: Callable[[str], None] | None = None):
        self.calls: list[str] = []
        self.on_generate = on_generate

    def count_tokens(self, prompt: str) -> int:
        return len(prompt.split())

    def generate(self, prompt, *, seed, out_path: Path, on_step=None) -> GeneratedVideo:
        self.calls.append(prompt)
        h = int(hashlib.sha256(f"{prompt}{seed}".encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(h)
        frames = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(4)]
        for i in range(2):
            if on_step:
                on_step(i + 1, 2)
        write_video(frames, out_path, fps=8)
        if self.on_generate:
            self.on_generate(prompt)
        return GeneratedVideo(Path(out_path), 4, 8, 16, 16, seed, self.count_tokens(prompt))


class FakeCaptioner:
    backend, model_id = "fake", "fake-cap"

    def __init__(self):
        self.calls: list[Path] = []

    def caption(self, video, *, objects=None) -> str:
        assert Path(video).is_file()
        self.calls.append(Path(video))
        return f"a video of {', '.join(objects or ['something'])} floating in the air"


class FakeScorer:
    backend, model_id = "fake", "fake-judge"

    def __init__(self, scores: list[tuple[float, float]]):
        self.scores = list(scores)
        self.prompts: list[str] = []

    def score(self, video, prompt) -> Scores:
        self.prompts.append(prompt)
        sa, pc = self.scores.pop(0)
        return Scores(sa=sa, pc=pc)


class SeedScorer:
    """Scores by the video's file name: ``video-s<seed>.mp4`` gets ``by_seed[seed]`` as (SA, PC); other names
    ``other`` (for one member of a verifier ensemble in loop-logic tests)."""

    model_id = "fake-by-seed"

    def __init__(self, by_seed: dict[int, tuple[float, float]], other: tuple[float, float] = (0.5, 0.5),
                 backend: str = "fake"):
        self.by_seed, self.other, self.backend = by_seed, other, backend
        self.videos: list[str] = []

    def score(self, video, prompt) -> Scores:
        stem = Path(video).stem
        self.videos.append(Path(video).name)
        sa, pc = self.by_seed[int(stem.split("-s")[-1])] if "-s" in stem else self.other
        return Scores(sa=sa, pc=pc, extra={"seen": Path(video).name})


class LayoutGenerator(FakeGenerator):
    """A FakeGenerator that takes a layout (as the diffusers backend does) and records each one it is given."""

    takes_layout = True

    def __init__(self, on_generate: Callable[[str], None] | None = None):
        super().__init__(on_generate)
        self.layouts: list = []

    def generate(self, prompt, *, seed, out_path: Path, on_step=None, layout=None) -> GeneratedVideo:
        self.layouts.append(layout)
        return super().generate(prompt, seed=seed, out_path=out_path, on_step=on_step)


class LocatingCaptioner(FakeCaptioner):
    """A FakeCaptioner with ``locate``: boxes from ``boxes(names, times)`` (default: none found); fault injection
    with ``fail`` (raised on the first call)."""

    def __init__(self, boxes: Callable[[list[str], list[float]], list] | None = None, fail: Exception | None = None):
        super().__init__()
        self.boxes = boxes or (lambda names, times: [[None] * len(names) for _ in times])
        self.fail = fail
        self.located: list[tuple[Path, list[str], list[float]]] = []

    def locate(self, video, objects, times):
        assert Path(video).is_file()
        self.located.append((Path(video), list(objects), list(times)))
        if self.fail is not None:
            err, self.fail = self.fail, None
            raise err
        return self.boxes(list(objects), list(times))
