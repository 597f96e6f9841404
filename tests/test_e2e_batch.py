"""`phyt2v batch` end to end on real components (the smoke preset: embedded SmolLM2, tiny random-weight
CogVideoX and Qwen2-VL, real mp4s): an uninterrupted run; kill -9 midway and resume, compared with it;
a finished rerun that makes zero model calls; two accelerate processes whose shards merge to the
same results; exports and metrics on the result."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phyt2v.batch import folder as batchdir

PROMPTS = ["a rubber ball is dropped onto a wooden floor", "a glass of water tips over on a table",
           "a wooden block slides down a ramp"]
ENV = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.slow


def batch_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    # One llama.cpp thread in every run: its float sums (so SmolLM2's greedy text) depend on the thread
    # count, and a 2-process launch gets fewer threads per process than a single process would.
    return [sys.executable, "-m", "phyt2v", "batch", str(src), "--preset", "smoke", "--out", str(out),
            "--set", "llm.options.n_threads=1", *extra]


def run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **ENV})


def the_batch(out: Path) -> Path:
    dirs = [p for p in out.iterdir() if batchdir.is_batch_dir(p)]
    assert len(dirs) == 1, dirs
    return dirs[0]


def comparable(line: dict) -> dict:
    """What must not depend on being killed and resumed, or on the shard that ran it."""
    return {"id": line["id"], "prompt": line["prompt"], "status": line["status"], "best": line["best_round"],
            "stop": line["stop_reason"],
            "rounds": [(r["index"], r["prompt"], round(r["sa"], 6), round(r["pc"], 6), r["video"])
                       for r in line["rounds"]]}


def model_calls(batch: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in batch.glob("runs/*/calls.jsonl"))


def kill_when_captioned(cmd: list[str], out: Path, runs_glob: str, what: str) -> None:
    """Start the batch, SIGKILL it as soon as a run matching ``runs_glob`` has captioned its round 1."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **ENV})
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            batch = next((p for p in out.iterdir() if batchdir.is_batch_dir(p)), None)
            recs = []
            for f in sorted(batch.glob(runs_glob)) if batch else []:
                try:
                    recs.append(json.loads(f.read_text()))
                except ValueError:  # caught mid-replace: look again
                    pass
            if any(r["rounds"] and "caption" in r["rounds"][0]["done"] for r in recs):
                break
            assert proc.poll() is None, "the batch ended before it could be killed midway"
            time.sleep(0.02)
        else:
            pytest.fail(f"{what} never reached round 1's caption")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("src") / "physics.txt"
    p.write_text("# three prompts\n" + "\n".join(PROMPTS) + "\n")
    return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory, prompts_file) -> Path:
    out = tmp_path_factory.mktemp("ref")
    r = run(batch_cmd(prompts_file, out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 prompt(s): 0 already done, 3 to run" in r.stderr
    return the_batch(out)


def test_uninterrupted_batch(reference):
    lines = [json.loads(x) for x in (reference / "results.jsonl").read_text().splitlines()]
    assert [x["prompt"] for x in lines] == PROMPTS
    for x in lines:
        assert x["status"] == "finished" and len(x["rounds"]) == 2
        assert all((reference / r["video"]).stat().st_size > 0 for r in x["rounds"])


def test_kill9_midway_then_resume_matches_the_uninterrupted_run(tmp_path, prompts_file, reference):
    cmd = batch_cmd(prompts_file, tmp_path)
    kill_when_captioned(cmd, tmp_path, "runs/0001-*/run.json", "prompt 2")  # prompt 1 done, prompt 2 in round 1
    batch = the_batch(tmp_path)
    assert len(batchdir.read_results(batch)) == 1  # only prompt 1 was appended before the kill
    killed_run = next(batch.glob("runs/0001-*"))
    gen_before = [c for c in map(json.loads, (killed_run / "calls.jsonl").read_text().splitlines())
                  if c["role"] == "generator"]

    r = run(cmd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 already done, 2 to run" in r.stderr
    gen_after = [c for c in map(json.loads, (killed_run / "calls.jsonl").read_text().splitlines())
                 if c["role"] == "generator"]
    # round 1's video of the killed prompt was not generated again: at most the interrupted round is redone
    assert gen_after[: len(gen_before)] == gen_before and len(gen_before) == 1
    assert len(gen_after) == 2
    got = [comparable(x) for x in map(json.loads, (batch / "results.jsonl").read_text().splitlines())]
    want = [comparable(x) for x in map(json.loads, (reference / "results.jsonl").read_text().splitlines())]
    assert got == want


def test_pipelined_batch_killed_and_rerun_matches_the_sequential_run(tmp_path, prompts_file, reference):
    """--concurrency 3: all three prompts in flight; SIGKILL once a round is half done somewhere, rerun
    (pipelined again): the results equal the uninterrupted sequential run's, in source order."""
    cmd = batch_cmd(prompts_file, tmp_path, "--concurrency", "3")
    kill_when_captioned(cmd, tmp_path, "runs/*/run.json", "any prompt")
    batch = the_batch(tmp_path)
    assert len(batchdir.read_results(batch)) < 3
    assert len(list(batch.glob("runs/*/run.json"))) >= 2  # more than one prompt was in flight
    r = run(cmd)
    assert r.returncode == 0, r.stderr[-3000:]
    got = [comparable(x) for x in map(json.loads, (batch / "results.jsonl").read_text().splitlines())]
    want = [comparable(x) for x in map(json.loads, (reference / "results.jsonl").read_text().splitlines())]
    assert got == want


def test_finished_batch_rerun_makes_zero_model_calls(prompts_file, reference):
    before = model_calls(reference)
    results_before = (reference / "results.jsonl").read_text()
    t0 = time.perf_counter()
    r = run(batch_cmd(prompts_file, reference.parent))
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 already done, 0 to run" in r.stderr
    assert model_calls(reference) == before > 0
    assert (reference / "results.jsonl").read_text() == results_before
    print(f"finished-batch rerun: {wall:.1f} s wall (process start included)")


def test_two_accelerate_processes_merge_to_the_same_results(tmp_path, prompts_file, reference):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m"]
    cmd = launcher + batch_cmd(prompts_file, tmp_path)[2:]
    r = run(cmd)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    batch = the_batch(tmp_path)
    shards = sorted(p.name for p in (batch / "shards").iterdir())
    assert shards == ["results-0-of-2.jsonl", "results-1-of-2.jsonl"]
    merged = [json.loads(x) for x in (batch / "results.jsonl").read_text().splitlines()]
    assert [x["shard"] for x in merged] == [[0, 2], [1, 2], [0, 2]]
    want = [comparable(x) for x in map(json.loads, (reference / "results.jsonl").read_text().splitlines())]
    assert [comparable(x) for x in merged] == want
    assert batch.name == reference.name  # same source and config: the same batch identity


def test_exports_and_metrics_on_the_batch(tmp_path, reference):
    r = run([sys.executable, "-m", "phyt2v", "export", str(reference), "--format", "videophy-eval",
             "--out", str(tmp_path / "eval.csv")])
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / "eval.csv").open()))
    assert [x["caption"] for x in rows] == PROMPTS and all(Path(x["videopath"]).is_file() for x in rows)
    r = run([sys.executable, "-m", "phyt2v", "export", str(reference), "--format", "vbench",
             "--round", "first", "--out", str(tmp_path / "vb")])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "vb").iterdir()) == sorted(f"{p}-0.mp4" for p in PROMPTS)
    r = run([sys.executable, "-m", "phyt2v", "export", str(reference), "--format", "preference",
             "--out", str(tmp_path / "pref.jsonl")])
    assert r.returncode == 0, r.stderr
    pref = [json.loads(x) for x in (tmp_path / "pref.jsonl").read_text().splitlines()]
    assert len(pref) == 3 and all(len(p["candidates"]) == 2 for p in pref)
    r = run([sys.executable, "-m", "phyt2v", "metrics", "auto", str(reference), "--json"])
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["n_finished"] == 3


def test_two_plain_processes_on_one_folder_split_the_prompts(tmp_path, prompts_file):
    cmd = batch_cmd(prompts_file, tmp_path, "--rounds", "1")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **ENV}) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    batch = the_batch(tmp_path)
    lines = [json.loads(x) for x in (batch / "results.jsonl").read_text().splitlines()]
    assert [x["prompt"] for x in lines] == PROMPTS and all(x["status"] == "finished" for x in lines)
    workers = set()
    for x in lines:  # each prompt computed once, by one of the two processes
        run_dir = batch / x["run_dir"]
        gens = [c for c in map(json.loads, (run_dir / "calls.jsonl").read_text().splitlines())
                if c["role"] == "generator"]
        invocations = json.loads((run_dir / "run.json").read_text())["invocations"]
        assert len(gens) == 1 and len(invocations) == 1
        workers.add(invocations[0]["pid"])
    assert workers == {p.pid for p in procs}  # both did some of the work
    assert len(batchdir.read_batch(batch)["invocations"]) == 2
