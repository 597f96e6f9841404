"""Stopping: a job queued on a lane does not start after a stop request; a pipelined batch stopped mid-way starts no
new step (and no new prompt), and the steps in progress are written; a reused Refiner runs normally after an
interrupted call; a second Ctrl-C ends ``phyt2v batch --concurrency 4`` at once, and the rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm
from llm_servers import StepServer
from test_pipeline import PROMPTS, Clock, HashScorer, SlowLLM, Timed

from phyt2v.batch import Batch
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import Interrupted
from phyt2v.loop import Refiner
from phyt2v.runtime.lanes import Lane
from phyt2v.store.record import RunRecord

REMOTE = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}


def test_a_lane_job_queued_behind_a_running_one_does_not_start_after_a_stop():
    stop = threading.Event()
    lane = Lane("gpu", should_stop=stop.is_set)
    gate, ran, outcome = threading.Event(), [], {}

    def second():
        try:
            lane.call(lambda: ran.append("second"))
            outcome["second"] = "ran"
        except Interrupted as e:
            outcome["second"] = e

    first = threading.Thread(target=lane.call, args=(lambda: (gate.wait(5), ran.append("first")),))
    first.start()
    time.sleep(0.05)  # the first job runs: the second waits in the queue
    queued = threading.Thread(target=second)
    queued.start()
    time.sleep(0.05)
    stop.set()
    gate.set()
    first.join(5)
    queued.join(5)
    assert ran == ["first"] and isinstance(outcome["second"], Interrupted)
    with pytest.raises(Interrupted):  # a job given after the stop does not start either
        lane.call(lambda: ran.append("third"))
    lane.close()
    assert ran == ["first"]


def test_a_stopped_pipelined_batch_starts_no_new_step_and_writes_the_steps_in_progress(tmp_path):
    """Five prompts, three in flight, GPU steps 50 ms, remote LLM 100 ms. The first generate waits until the
    other two prompts have queued theirs, asks for the stop (as a first Ctrl-C does) and goes on for 100 ms:
    after the request, no step and no prompt starts (the queued generates included); that generate is written."""
    cfg = load_config(llm=REMOTE, loop={"max_rounds": 2, "min_rounds": 2})
    clock, events, mark = Clock(), [], {}
    ref_box: dict = {}

    class StopOnFirst(FakeGenerator):
        def generate(self, prompt, **kw):
            if not self.calls:
                time.sleep(0.3)  # the other prompts' rules (100 ms) are done: their generates wait on the GPU lane
                ref_box["ref"].request_stop()
                mark["at"] = len(events)  # every event after this one was emitted after the request
                mark["prompt"] = prompt
                time.sleep(0.1)
            return super().generate(prompt, **kw)

    def on_refine_event(ev):
        events.append(("step_start", ev.step) if ev.kind == "step_start" else (ev.kind, None))

    ref = Refiner(cfg, llm=SlowLLM(clock, 0.1), generator=Timed(StopOnFirst(), clock, 0.05, "gpu"),
                  captioner=Timed(FakeCaptioner(), clock, 0.05, "gpu"), scorer=Timed(HashScorer(), clock, 0.05, "gpu"),
                  on_event=on_refine_event)
    ref_box["ref"] = ref
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(PROMPTS) + "\n")
    prompt_starts: list[float] = []
    b = Batch(load_source(str(src)), cfg, out=tmp_path / "b", refiner=ref, concurrency=3,
              on_event=lambda kind, data: prompt_starts.append(len(events)) if kind == "prompt_start" else None)
    summary = b.run()
    assert summary.interrupted and "at" in mark
    late = [e for e in events[mark["at"]:] if e[0] in ("step_start", "run_start")]
    assert late == [], f"started after the stop: {late}"
    assert all(n <= mark["at"] for n in prompt_starts) and len(prompt_starts) == 3  # the queued prompts stayed
    recs = [RunRecord.model_validate_json(p.read_text()) for p in b.dir.glob("runs/*/run.json")]
    assert len(recs) == 3 and all(r.status == "interrupted" for r in recs)
    (stopper,) = [r for r in recs if r.prompt == mark["prompt"]]
    assert "generate" in stopper.rounds[0].done  # the step in progress finished and was written


def make_refiner(tmp_path: Path, gen: FakeGenerator) -> Refiner:
    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1}, out=str(tmp_path))
    return Refiner(cfg, llm=physics_llm(), generator=gen, captioner=FakeCaptioner(),
                   scorer=FakeScorer([(0.5, 0.5)] * 10))


def in_a_thread(fn):
    """Run ``fn`` in a worker thread (the Python API from a thread: no SIGINT handler); its result or error."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001  (returned to the test)
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    return box


def test_a_reused_refiner_runs_normally_after_an_interrupted_refine(tmp_path):
    ref_box: dict = {}
    gen = FakeGenerator(on_generate=lambda p: ref_box["ref"].request_stop() if len(gen.calls) == 1 else None)
    ref = ref_box["ref"] = make_refiner(tmp_path, gen)
    first = in_a_thread(lambda: ref.refine("a rubber ball is dropped onto a wooden floor"))
    assert isinstance(first.get("error"), Interrupted), first
    again = in_a_thread(lambda: ref.refine("a rubber ball is dropped onto a wooden floor"))
    assert "error" not in again, again
    assert again["value"].record.status == "finished" and len(gen.calls) == 1  # resumed: generate not redone
    other = in_a_thread(lambda: ref.refine("a glass of water tips over on a table"))
    assert "error" not in other and other["value"].record.status == "finished"


def test_a_reused_refiner_runs_a_new_pipelined_batch_after_an_interrupted_one(tmp_path):
    cfg = load_config(llm=REMOTE, loop={"max_rounds": 1, "min_rounds": 1})
    clock, ref_box = Clock(), {}
    gen = FakeGenerator(on_generate=lambda p: ref_box["ref"].request_stop() if len(gen.calls) == 1 else None)
    ref = ref_box["ref"] = Refiner(cfg, llm=SlowLLM(clock, 0.02), generator=gen, captioner=FakeCaptioner(),
                                   scorer=HashScorer())
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(PROMPTS[:3]) + "\n")
    first = in_a_thread(lambda: Batch(load_source(str(src)), cfg, out=tmp_path / "b", refiner=ref,
                                      concurrency=2).run())
    assert first["value"].interrupted
    again = in_a_thread(lambda: Batch(load_source(str(src)), cfg, out=tmp_path / "b", refiner=ref,
                                      concurrency=2).run())
    assert "error" not in again, again
    assert not again["value"].interrupted and again["value"].merged


# ---------------------------------------------------------------- end to end: a second Ctrl-C

ENV = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
E2E_PROMPTS = ["a rubber ball is dropped onto a wooden floor", "a glass of water tips over on a table",
               "a wooden block slides down a ramp"]


def batch_cmd(src: Path, out: Path, llm_url: str) -> list[str]:
    return [sys.executable, "-m", "phyt2v", "batch", str(src), "--preset", "smoke", "--out", str(out),
            "--concurrency", "4", "--set", "llm.backend=openai", "--set", f"llm.base_url={llm_url}",
            "--set", "llm.model=step-server"]


def records(out: Path) -> dict[str, dict]:
    recs = {}
    for f in out.glob("*/runs/*/run.json"):
        try:
            recs[f.parent.name] = json.loads(f.read_text())
        except ValueError:  # caught mid-replace
            pass
    return recs


@pytest.mark.slow
def test_a_second_ctrl_c_ends_a_pipelined_batch_at_once_and_the_rerun_resumes(tmp_path):
    """The smoke batch, three prompts in flight, its LLM a loopback server that takes 15 s per reply (a slow remote
    API). Ctrl-C once when a prompt has scored round 1 (its mismatch request is then in flight), again 0.5 s later:
    the process ends within seconds with code 130, without waiting for the request in flight (before the fix it
    waited for it, and for every queued step); the rerun finishes every prompt, keeping the steps that were written."""
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(E2E_PROMPTS) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, **ENV}
    with StepServer(delay_s=15.0) as server:
        proc = subprocess.Popen(batch_cmd(src, out, server.base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            deadline = time.monotonic() + 600
            while not any(r["rounds"] and "score" in r["rounds"][0]["done"] for r in records(out).values()):
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "no prompt scored its round 1 within 600 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            t0 = time.monotonic()
            _, err = proc.communicate(timeout=60)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 130, f"exit code {proc.returncode} after {took:.1f} s: {err[-3000:]}"
        assert took < 8.0, f"the second Ctrl-C took {took:.1f} s to end the batch: {err[-2000:]}"
        assert "Traceback" not in err and "interrupted" in err, err[-3000:]
        before = records(out)
        assert before and all(r["status"] in ("running", "interrupted") for r in before.values()), before
        server.delay_s = 0.0
        again = subprocess.run(batch_cmd(src, out, server.base_url), capture_output=True, text=True, timeout=900,
                               env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    batch = next(p for p in out.iterdir() if batchdir.is_batch_dir(p))
    lines = [json.loads(x) for x in (batch / batchdir.RESULTS_FILE).read_text().splitlines()]
    assert sorted(x["prompt"] for x in lines) == sorted(E2E_PROMPTS) and all(x["status"] == "finished" for x in lines)
    for name, rec in before.items():  # the written steps were kept: the rerun resumed them, it did not redo them
        after = json.loads((batch / "runs" / name / "run.json").read_text())
        for r0, r1 in zip(rec["rounds"], after["rounds"]):
            assert r1["done"][: len(r0["done"])] == r0["done"]
            if "generate" in r0["done"]:
                assert r1["video"] == r0["video"] and r1["seed"] == r0["seed"]


def test_a_ctrl_c_during_the_interpreters_exit_is_ignored_not_fatal():
    """Python's finalization gives SIGINT back its default action (death by the signal: Popen's -2, not the exit
    code) when its handler is a Python function; the CLI's last exit handler ignores SIGINT first. Here a handler
    registered before the CLI's (so run after it) looks at the handler and sends the process a SIGINT: it exits
    with the command's own code."""
    code = ("import atexit, os, signal\n"
            "def late():\n"
            "    print('ignored at exit:', signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "atexit.register(late)\n"
            "from phyt2v.cli.app import main\n"
            "main(['presets'])\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **ENV})
    assert p.returncode == 0 and "ignored at exit: True" in p.stdout, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
