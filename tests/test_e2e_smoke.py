"""End to end on real components: `phyt2v refine --preset smoke` (embedded SmolLM2 through
xllamacpp, tiny random-weight CogVideoX and Qwen2-VL built on the fly, real mp4 files)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_servers import FaultyServer, fail, ok, smollm_server

from phyt2v.store.record import RunRecord
from phyt2v.store.video_io import probe

pytestmark = pytest.mark.slow  # end-to-end: real subprocesses and models, minutes on 2 cores

PROMPT = "a rubber ball is dropped onto a wooden floor"
FAKE_KEY = "sk-test-NEVER-WRITE-ME-7f3a9c"


def cli(*args, env=None):
    e = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return [sys.executable, "-m", "phyt2v", *args], e


def run_cli(*args, env=None, timeout=600):
    cmd, e = cli(*args, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)


def the_run(out: Path) -> tuple[Path, RunRecord]:
    runs = [p for p in out.iterdir() if (p / "run.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0], RunRecord.model_validate_json((runs[0] / "run.json").read_text())


def calls(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines()]


def no_secret_in(run_dir: Path, secret: str) -> None:
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f"secret leaked into {f}"


def wait_for_step(out: Path, proc: subprocess.Popen, step: str, timeout: float = 300) -> None:
    """Poll run.json until round 1 has finished ``step`` (the process must still be running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = list(out.glob("*/run.json"))
        try:
            rec = RunRecord.model_validate_json(recs[0].read_text()) if recs else None
        except ValueError:
            rec = None
        if rec and rec.rounds and step in rec.rounds[0].done:
            return
        assert proc.poll() is None, f"the run ended before round 1 finished {step}"
        time.sleep(0.02)
    pytest.fail(f"round 1 did not finish {step} within {timeout} s")


def test_refine_smoke_two_rounds(tmp_path):
    p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path),
                env={"OPENAI_API_KEY": FAKE_KEY})
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and len(rec.rounds) >= 2 and rec.stop_reason == "max_rounds"
    assert rec.rules is not None and rec.rules.objects is not None
    for r in rec.rounds:
        info = probe(run_dir / r.video)
        assert info.num_frames >= 8 and info.width == 16 and info.height == 16
        assert 0.0 <= r.scores.sa <= 1.0 and 0.0 <= r.scores.pc <= 1.0 and 0.0 <= r.scores.score <= 1.0
        assert (run_dir / f"round-{r.index}" / "caption.txt").is_file()
        assert r.models["generator"].startswith("cogvideox:") and r.models["llm"].startswith("embedded:")
    assert rec.rounds[0].refined_prompt == rec.rounds[1].prompt  # round 2 used the refined prompt
    assert rec.rounds[0].mismatch is not None
    assert rec.best_round in (1, 2) and "best video:" in p.stdout
    best = rec.rounds[rec.best_round - 1]
    assert best.scores.score == max(r.scores.score for r in rec.rounds)
    assert "noise" in p.stderr  # the smoke preset says what it is
    roles = [c["role"] for c in calls(run_dir)]
    assert roles.count("generator") == 2 and roles.count("scorer") == 2 and roles.count("captioner") == 2
    assert json.loads((run_dir / "config.json").read_text())["generator"]["model"] == "tiny"
    no_secret_in(run_dir, FAKE_KEY)


def test_resume_after_sigkill(tmp_path):
    cmd, env = cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seed", "7")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_step(tmp_path, proc, "score")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "running" and rec.rounds[0].video
    first_video = (run_dir / "round-1" / "video.mp4").read_bytes()
    p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seed", "7")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming" in p.stderr
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and len(rec.rounds) == 2
    gens = [c for c in calls(run_dir) if c["role"] == "generator"]
    assert [c["output"] for c in gens] == ["round-1/video.mp4", "round-2/video.mp4"]  # round 1 not redone
    assert (run_dir / "round-1" / "video.mp4").read_bytes() == first_video
    # a finished run: rerunning makes no model call at all
    n = len(calls(run_dir))
    p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seed", "7")
    assert p.returncode == 0 and len(calls(run_dir)) == n


def test_second_refine_on_the_same_run_is_refused_with_the_holders_pid(tmp_path):
    cmd, env = cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path))
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_step(tmp_path, first, "generate")
        second = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path))
        assert first.poll() is None, "the first run ended before the second was started"
    finally:
        first.kill()
        first.wait(30)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    text = " ".join(second.stderr.split())
    assert f"in use by pid {first.pid}" in text and "wait for that process" in text
    run_dir, rec = the_run(tmp_path)
    assert [c["role"] for c in calls(run_dir)].count("generator") == 1  # the second process did no work
    assert len(rec.invocations) == 1


def test_openai_backend_through_real_http_server(tmp_path):
    with smollm_server(n_ctx=4096) as base_url:
        p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--rounds", "2",
                    "--set", "llm.backend=openai", "--set", f"llm.base_url={base_url}",
                    "--set", "llm.model=smollm2", "--set", "llm.timeout_s=300",  # a CPU server on a busy box
                    env={"OPENAI_API_KEY": FAKE_KEY})
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and rec.models["llm"] == "openai:smollm2"
    assert any(c["role"] == "llm" and c["backend"] == "openai" for c in calls(run_dir))
    no_secret_in(run_dir, FAKE_KEY)
    assert FAKE_KEY not in p.stdout + p.stderr


def test_llm_endpoint_failing_keeps_finished_rounds(tmp_path):
    rules = json.dumps({"objects": ["ball", "floor"], "rules": ["gravity pulls the ball down"],
                        "expected_outcome": "the ball falls and bounces"})
    with FaultyServer([ok(rules), fail(500, "upstream exploded")]) as srv:
        p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path),
                    "--set", "llm.backend=openai", "--set", f"llm.base_url={srv.base_url}",
                    "--set", "llm.max_retries=2", "--set", "llm.backoff_s=0.01",
                    env={"OPENAI_API_KEY": FAKE_KEY})
        assert srv.count == 1 + 3  # the rules call, then one failing call tried 3 times
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "error:" in p.stderr and "500" in p.stderr
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "failed" and rec.error.step == "mismatch"
    assert rec.rounds[0].scores is not None and (run_dir / "round-1" / "video.mp4").is_file()
    no_secret_in(run_dir, FAKE_KEY)
    assert FAKE_KEY not in p.stdout + p.stderr


def test_enhance_with_the_embedded_llm():
    p = run_cli("enhance", PROMPT, "--preset", "smoke", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(p.stdout)
    assert data["prompt"] == PROMPT and isinstance(data["enhanced"], str) and len(data["enhanced"]) >= 3
    assert isinstance(data["rules"]["objects"], list) and isinstance(data["rules"]["rules"], list)


def test_prompt_over_the_generators_token_budget(tmp_path):
    long_prompt = " ".join(["a red rubber ball falls onto the wooden floor and bounces"] * 7)  # tiny limit: 64
    p = run_cli("refine", long_prompt, "--preset", "smoke", "--out", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    text = " ".join(p.stderr.split())
    assert "tokens but" in text and "reads at most 64" in text and "allow_long_prompt" in text
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # refused before any work: no failed run folder


def test_ctrl_c_stops_after_the_current_step_and_resumes(tmp_path):
    cmd, env = cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seed", "11")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_step(tmp_path, proc, "generate")  # round 1 generated: press Ctrl-C once
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "resume" in err
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "interrupted" and len(rec.rounds) == 1
    done_before = list(rec.rounds[0].done)
    p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seed", "11")
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and rec.rounds[0].done[: len(done_before)] == done_before
    gens = [c for c in calls(run_dir) if c["role"] == "generator"]
    assert [c["output"] for c in gens] == ["round-1/video.mp4", "round-2/video.mp4"]


def test_smoke_best_of_n_with_draft_rounds_through_the_cli(tmp_path):
    """--seeds 2 --draft on the real tiny CogVideoX: both seeds rendered in one batched pipeline call at the
    draft steps, scored; the best round rendered again at full steps; the report and the record say so."""
    p = run_cli("refine", PROMPT, "--preset", "smoke", "--out", str(tmp_path), "--seeds", "2", "--draft",
                "--set", "generator.steps=4")
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert "best of 2 seeds" in p.stderr and "final render of round" in p.stdout
    for r in rec.rounds:
        assert r.draft and [c.seed for c in r.candidates] == [42, 43]
        assert all(c.video_info["steps"] == 1 for c in r.candidates)  # 0.25 x 4 steps
        assert all(probe(run_dir / c.video).num_frames == 9 for c in r.candidates)
    gens = [c for c in calls(run_dir) if c["role"] == "generator"]
    assert [g["inputs"].get("seeds") for g in gens[:2]] == [[42, 43], [42, 43]]  # one call per round
    assert gens[-1]["inputs"]["seed"] == rec.final.seed and "overrides" not in gens[-1]["inputs"]
    assert rec.final.video_info["steps"] == 4 and rec.final.scores is not None
    assert rec.final.prompt == rec.rounds[rec.best_round - 1].prompt


def test_refine_smoke_with_layout_guidance_on_tiny_wan(tmp_path):
    """The issue's "done when": loop.layout=guide on smoke with tiny Wan through the CLI; the plan, each round's
    check and the guidance that ran are recorded, the keyframes extracted, the report draws them."""
    p = run_cli("refine", "a red ball rolls from the left to the right of a table", "--preset", "smoke",
                "--set", "loop.layout=guide", "--set", "generator.backend=diffusers", "--set",
                "generator.model=tiny-wan", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and rec.layout is not None and len(rec.layout.keyframes) == 6
    for r in rec.rounds:
        assert r.models["generator"] == "diffusers:tiny-wan"
        knobs = r.video_info["knobs"]["layout_guidance"]
        assert knobs["guided_steps"] and len(knobs["energy"]) == len(knobs["guided_steps"]) and knobs["objects"]
        assert r.layout is not None and r.layout.guided and len(r.layout.keyframes) == 6
        assert all((run_dir / f).is_file() for f in r.layout.frames) and len(r.layout.frames) == 6
        assert all(0.0 <= o.iou <= 1.0 for kf in r.layout.keyframes for o in kf)
    roles = [c["role"] for c in calls(run_dir)]
    assert roles.count("generator") == len(rec.rounds)
    rep = run_cli("report", str(run_dir))
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = Path(rep.stdout.strip().splitlines()[-1]).read_text()
    assert "<svg" in html and "layout/keyframe-1.jpg" in html
