"""Pipelined batch (``--concurrency K``), on the loop's test doubles with fixed delays: GPU steps never
overlap, remote LLM calls do, the results equal a sequential run's, and the pipelined batch is faster.
(The real smoke batch pipelined, killed with SIGKILL and rerun is in test_e2e_batch.py.)"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from doubles import RULES, FakeCaptioner, FakeGenerator, mismatch, refinement, step_of

from phyt2v.batch import Batch
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import Phyt2vError
from phyt2v.loop import Refiner
from phyt2v.roles import Scores
from phyt2v.runtime.lanes import Lane, Lanes, llm_lane_kind

PROMPTS = ["a ball rolls down a ramp", "water pours into a glass", "a glass falls and shatters",
           "ice melts on a hot pan", "a pendulum swings"]


class Clock:
    """Records (kind, start, end) of every timed call, from any thread."""

    def __init__(self):
        self.spans: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def timed(self, kind: str, seconds: float):
        t0 = time.perf_counter()
        time.sleep(seconds)
        with self.lock:
            self.spans.append((kind, t0, time.perf_counter()))

    def of(self, *kinds: str) -> list[tuple[float, float]]:
        return sorted((a, b) for k, a, b in self.spans if k in kinds)


def overlaps(spans: list[tuple[float, float]]) -> int:
    return sum(1 for (a0, a1), (b0, b1) in zip(spans, spans[1:]) if b0 < a1 - 1e-4)


class SlowLLM:
    """Replies depend only on the messages (never on call order), after a fixed delay (a remote API)."""

    backend, model_id, supports_schema = "scripted", "scripted-1", False

    def __init__(self, clock: Clock, delay: float):
        self.clock, self.delay = clock, delay

    def complete(self, messages, *, schema=None, max_tokens=None) -> str:
        self.clock.timed("llm", self.delay)
        step = step_of(messages)
        if step == "rules":
            return json.dumps(RULES)
        if step == "mismatch":
            return mismatch("the ball floats")
        h = hashlib.sha256(messages[-1]["content"].encode()).hexdigest()[:6]
        return refinement(f"a physically correct scene, take {h}")


class Timed:
    """A fake GPU backend: the wrapped call after a fixed delay, timed."""

    def __init__(self, inner, clock: Clock, delay: float, kind: str):
        self.inner, self.clock, self.delay, self.kind = inner, clock, delay, kind
        self.backend, self.model_id = inner.backend, inner.model_id

    def __getattr__(self, name):
        fn = getattr(self.inner, name)
        if name not in ("generate", "caption", "score"):
            return fn

        def call(*a, **kw):
            self.clock.timed(self.kind, self.delay)
            return fn(*a, **kw)
        return call


class HashScorer:
    backend, model_id = "fake", "fake-judge"

    def score(self, video, prompt):
        h = int(hashlib.sha256(Path(video).read_bytes()).hexdigest()[:8], 16)
        return Scores(sa=(h % 1000) / 1000, pc=((h // 1000) % 1000) / 1000)


def run_batch(tmp_path: Path, name: str, k: int, *, delay: float = 0.05, llm_delay: float = 0.1, refiner=None,
              on_event=None):
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(PROMPTS) + "\n")
    cfg = load_config(llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"},
                      loop={"max_rounds": 2, "min_rounds": 2})
    clock = Clock()
    ref = refiner or Refiner(cfg, llm=SlowLLM(clock, llm_delay),
                             generator=Timed(FakeGenerator(), clock, delay, "gpu"),
                             captioner=Timed(FakeCaptioner(), clock, delay, "gpu"),
                             scorer=Timed(HashScorer(), clock, delay, "gpu"))
    b = Batch(load_source(str(src)), cfg, out=tmp_path / name, refiner=ref, concurrency=k, on_event=on_event)
    t0 = time.perf_counter()
    summary = b.run()
    return b, summary, clock, time.perf_counter() - t0


def lines_of(b: Batch) -> list[dict]:
    keep = ("id", "index", "prompt", "status", "best_round", "stop_reason")
    out = []
    for x in map(json.loads, (b.dir / batchdir.RESULTS_FILE).read_text().splitlines()):
        out.append({**{k: x[k] for k in keep},
                    "rounds": [(r["prompt"], r["sa"], r["pc"], r["caption"], r["video"]) for r in x["rounds"]]})
    return out


@pytest.mark.slow
def test_pipelined_equals_sequential_gpu_serial_llm_concurrent(tmp_path):
    seq, s1, c1, wall1 = run_batch(tmp_path, "seq", 1)
    pipe, s4, c4, wall4 = run_batch(tmp_path, "pipe", 4)
    assert s1.finished == s4.finished == len(PROMPTS) and s4.merged
    assert lines_of(pipe) == lines_of(seq)  # same results, in source order
    for a, b in zip(sorted(seq.dir.glob("runs/*/round-*/video.mp4")), sorted(pipe.dir.glob("runs/*/round-*/video.mp4"))):
        assert a.read_bytes() == b.read_bytes()
    assert overlaps(c4.of("gpu")) == 0  # one GPU step at a time
    assert overlaps(c4.of("llm")) > 0  # remote LLM calls in flight together
    assert overlaps(c1.of("gpu", "llm")) == 0  # sequential: nothing overlaps
    assert wall4 < 0.8 * wall1, (wall4, wall1)


def test_local_llm_gets_its_own_serial_lane(tmp_path):
    assert llm_lane_kind({"backend": "openai"}, "auto", True) == "none"
    assert llm_lane_kind({"backend": "embedded"}, "auto", True) == "own"
    assert llm_lane_kind({"backend": "transformers"}, "auto", True) == "gpu"
    assert llm_lane_kind({"backend": "vlm"}, "auto", True) == "gpu"
    assert llm_lane_kind({"backend": "transformers"}, "cpu", True) == "own"
    assert llm_lane_kind({"backend": "transformers"}, "auto", False) == "own"
    # a local LLM's calls never overlap each other, even with 4 prompts in flight
    clock = Clock()
    gpu, llm = Lane("gpu"), Lane("llm")
    lanes = Lanes(gpu, llm, [gpu, llm])
    threads = [threading.Thread(target=lanes.call, args=("llm", lambda: clock.timed("llm", 0.05)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lanes.close()
    assert len(clock.of("llm")) == 4 and overlaps(clock.of("llm")) == 0
    assert llm.jobs == 4 and 0.9 < llm.busy_fraction() <= 1.0


def test_a_failing_prompt_does_not_stop_the_others(tmp_path):
    class FailOn(FakeGenerator):
        def generate(self, prompt, **kw):
            if "glass falls" in prompt:
                raise RuntimeError("CUDA out of memory (injected)")
            return super().generate(prompt, **kw)

    cfg = load_config(llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"},
                      loop={"max_rounds": 2, "min_rounds": 2})
    clock = Clock()
    ref = Refiner(cfg, llm=SlowLLM(clock, 0.02), generator=FailOn(), captioner=FakeCaptioner(), scorer=HashScorer())
    b, summary, _, _ = run_batch(tmp_path, "fail", 3, refiner=ref)
    assert summary.finished == len(PROMPTS) - 1 and not summary.interrupted
    assert len(summary.failed) == 1 and "glass falls" in summary.failed[0]["prompt"]
    assert summary.failed[0]["error"]["step"] == "generate"


def test_a_model_that_cannot_load_stops_every_prompt(tmp_path):
    cfg = load_config(llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"},
                      generator={"backend": "diffusers", "model": str(tmp_path / "no-such-model")},
                      loop={"max_rounds": 2, "min_rounds": 2})
    clock = Clock()
    ref = Refiner(cfg, llm=SlowLLM(clock, 0.02), captioner=FakeCaptioner(), scorer=HashScorer())
    started = []
    with pytest.raises(Phyt2vError, match="no-such-model"):
        run_batch(tmp_path, "noload", 2, refiner=ref,
                  on_event=lambda kind, data: started.append(data["item"].id) if kind == "prompt_start" else None)
    assert 1 <= len(started) <= 2  # only the prompts in flight started; the queued ones were left untouched


def test_a_lane_runs_the_oldest_run_first():
    """Waiting jobs run by priority (a run's start order), not arrival: the oldest prompt's next GPU step
    goes before a newer prompt's, so prompts do not move through the GPU in lockstep."""
    lane = Lane("gpu")
    gate, ran = threading.Event(), []
    blocker = threading.Thread(target=lane.call, args=(gate.wait,))
    blocker.start()
    time.sleep(0.05)  # the lane is busy: the next jobs wait in its queue
    threads = []
    for p in (3, 1, 2):
        t = threading.Thread(target=lane.call, args=(lambda p=p: ran.append(p), p))
        t.start()
        threads.append(t)
        time.sleep(0.02)  # arrival order 3, 1, 2
    gate.set()
    for t in [blocker, *threads]:
        t.join()
    lane.close()
    assert ran == [1, 2, 3]


def test_a_pipelined_refiner_gives_the_oldest_run_the_gpu_first(tmp_path):
    """Three runs of one Refiner in flight, started in order (run orders 1, 2, 3). Run 1's generate holds the GPU
    lane while run 3, then run 2 (its rules reply is slower) queue their generates: when the lane frees, run 2's
    generate goes first, though it arrived last (the Refiner passes each run's order to the lanes)."""
    prompts = ["a ball rolls down a ramp", "water pours into a glass", "ice melts on a hot pan"]
    rules_delay = {prompts[0]: 0.0, prompts[1]: 0.5, prompts[2]: 0.1}

    def answer(messages):
        step = step_of(messages)
        if step == "rules":
            text = " ".join(m["content"] for m in messages)
            time.sleep(next(d for p, d in rules_delay.items() if p in text))
            return json.dumps(RULES)
        return mismatch("the ball floats") if step == "mismatch" else refinement("a refined prompt")

    class HoldFirst(FakeGenerator):
        def generate(self, prompt, **kw):
            if not self.calls:
                time.sleep(1.0)  # the GPU lane is busy while the other runs queue their generates
            return super().generate(prompt, **kw)

    from doubles import ScriptedLLM

    cfg = load_config(llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"},
                      loop={"max_rounds": 1, "min_rounds": 1}, out=str(tmp_path))
    started = [threading.Event() for _ in prompts]
    seen = []

    def on_event(ev):
        if ev.kind == "run_start":
            started[len(seen)].set()
            seen.append(ev.data["run_dir"])

    gen = HoldFirst()
    ref = Refiner(cfg, llm=ScriptedLLM(answer), generator=gen, captioner=FakeCaptioner(), scorer=HashScorer(),
                  on_event=on_event)
    results, threads = {}, []
    with ref.pipeline(3):
        for i, p in enumerate(prompts):  # run i+1 starts once run i has its order
            threads.append(threading.Thread(target=lambda i=i, p=p: results.setdefault(i, ref.refine(p))))
            threads[-1].start()
            assert started[i].wait(10)
        for t in threads:
            t.join(30)
    assert [results[i].record.status for i in range(3)] == ["finished"] * 3
    assert gen.calls == prompts, gen.calls  # by age, not arrival (arrival: runs 1, 3, 2)


def test_worker_threads_use_the_cuda_device_the_main_thread_chose(tmp_path, monkeypatch):
    """torch keeps the current CUDA device per thread. Under ``accelerate launch`` the main thread of rank 1 calls
    ``torch.cuda.set_device(1)``; the GPU and LLM lane threads and the prompt threads of a pipelined batch must
    resolve 'auto' to that device too, not to the default cuda:0. (torch.cuda stubbed: a per-thread index.)"""
    import torch

    from phyt2v.runtime import memplan
    from phyt2v.runtime.devices import resolve_device

    current = threading.local()

    def set_device(d):
        current.index = d if isinstance(d, int) else torch.device(d).index

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: getattr(current, "index", 0))
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(memplan, "free_for_run", lambda: 80 * 2**30)
    seen: list[tuple[str, str]] = []

    def record(result):
        seen.append((threading.current_thread().name, resolve_device("auto", "device")))
        return result

    class Where:
        """A double that records the thread and the device 'auto' resolves to at every call."""

        def __init__(self, inner):
            self.inner, self.backend, self.model_id = inner, inner.backend, inner.model_id
            self.max_prompt_tokens = getattr(inner, "max_prompt_tokens", None)
            self.supports_schema = False

        def __getattr__(self, name):
            fn = getattr(self.inner, name)
            return lambda *a, **kw: record(fn(*a, **kw))

    from doubles import physics_llm

    cfg = load_config(llm={"backend": "embedded"}, loop={"max_rounds": 1, "min_rounds": 1})
    torch.cuda.set_device(1)  # what batch/shards.distributed_shard does on the main thread of local rank 1
    ref = Refiner(cfg, llm=Where(physics_llm()), generator=Where(FakeGenerator()), captioner=Where(FakeCaptioner()),
                  scorer=Where(HashScorer()))
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(PROMPTS[:3]) + "\n")
    summary = Batch(load_source(str(src)), cfg, out=tmp_path / "b", refiner=ref, concurrency=3).run()
    assert summary.finished == 3
    threads = {name.split("_")[0] for name, _ in seen}
    assert {"phyt2v-gpu", "phyt2v-llm", "phyt2v-prompt"} <= threads, threads  # every kind of worker was seen
    assert {dev for _, dev in seen} == {"cuda:1"}, sorted(set(seen))


def test_a_lane_that_cannot_take_its_device_fails_its_jobs_instead_of_hanging(monkeypatch):
    import torch

    def refuse(d):
        raise RuntimeError("CUDA error: invalid device ordinal")

    monkeypatch.setattr(torch.cuda, "set_device", refuse)
    lane, box = Lane("gpu", device=7), {}

    def call():
        try:
            box["value"] = lane.call(lambda: "ran")
        except RuntimeError as e:
            box["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "the job hung on a lane whose thread could not take its device"
    assert "invalid device ordinal" in str(box.get("error")) and "value" not in box
    lane.close()
