"""The whole loop through the CLI with a served generator: `phyt2v refine "..." --preset smoke --set
generator.backend=openai --set generator.base_url=http://127.0.0.1:PORT/v1 --set generator.model=M` against a
loopback Videos API server (tests/video_servers.py) that renders real mp4s with the tiny CogVideoX pipeline; the
rest of smoke (embedded LLM, tiny captioner and judge) runs here. Also: kill -9 mid-job then a rerun (one job per
round), a moderated prompt (one line, exit 1), and a pipelined batch keeping several jobs in flight."""

import json
import signal
import subprocess
import time

import pytest
from llm_servers import StepServer
from test_e2e_smoke import FAKE_KEY, cli, no_secret_in, run_cli, the_run
from video_servers import VideosServer

from phyt2v.store.record import RunRecord

PROMPT = "a rubber ball is dropped onto a wooden floor"


def served(srv, *extra):
    return ["--preset", "smoke", "--set", "generator.backend=openai", "--set", f"generator.base_url={srv.base_url}",
            "--set", "generator.model=tiny-video", "--set", "generator.poll_s=0.1", *extra]


@pytest.mark.slow
def test_refine_smoke_through_a_videos_api_server(tmp_path):
    with VideosServer(key=FAKE_KEY) as srv:
        p = run_cli("refine", PROMPT, *served(srv), "--out", str(tmp_path), env={"OPENAI_API_KEY": FAKE_KEY})
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and len(rec.rounds) == 2
    assert rec.models["generator"] == "openai:tiny-video"
    assert rec.memory_plan["roles"]["generator"]["source"] == "remote"
    creates = srv.creates()
    assert [c["fields"]["prompt"] for c in creates] == [r.prompt for r in rec.rounds]
    assert [[j.id for j in r.jobs] for r in rec.rounds] == [[c["id"]] for c in creates]
    assert all(r.video_info["knobs"]["seed_sent"] and (run_dir / r.video).stat().st_size > 0 for r in rec.rounds)
    no_secret_in(run_dir, FAKE_KEY)
    assert FAKE_KEY not in p.stdout + p.stderr


@pytest.mark.slow
def test_kill_9_mid_job_then_rerun_creates_one_job_per_round(tmp_path):
    with VideosServer(hold=True) as srv:
        cmd, env = cli("refine", PROMPT, *served(srv), "--out", str(tmp_path))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 300
            recorded = None
            while time.monotonic() < deadline and recorded is None:
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                recs = list(tmp_path.glob("*/run.json"))
                rec = RunRecord.model_validate_json(recs[0].read_text()) if recs else None
                recorded = rec.rounds[0].jobs[0] if rec and rec.rounds and rec.rounds[0].jobs else None
                time.sleep(0.1)
            assert recorded is not None and len(srv.creates()) == 1
            time.sleep(0.5)  # polling the held job
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        srv.release()
        p = run_cli("refine", PROMPT, *served(srv), "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    _, rec = the_run(tmp_path)
    creates = srv.creates()
    assert len(creates) == len(rec.rounds) == 2  # round 1's job was polled again, not created twice
    assert rec.rounds[0].jobs[0].id == recorded.id == creates[0]["id"]


@pytest.mark.slow
def test_a_moderated_prompt_fails_in_one_line_with_exit_1(tmp_path):
    with VideosServer(moderate="rubber") as srv:
        p = run_cli("refine", PROMPT, *served(srv), "--out", str(tmp_path))
    assert p.returncode == 1, p.stderr[-3000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in p.stderr
    assert "moderation_blocked: Your request was blocked by our moderation system." in errors[0]
    _, rec = the_run(tmp_path)
    assert rec.status == "failed" and rec.error.kind == "JobFailed"
    assert rec.rounds[0].jobs[0].status == "failed"


@pytest.mark.slow
def test_a_pipelined_batch_keeps_several_jobs_in_flight(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"a ball number {i} rolls down a ramp" for i in range(4)) + "\n")
    with StepServer() as llm, VideosServer(render_s=4.0) as srv:
        p = run_cli("batch", str(prompts), *served(srv, "--set", f"llm.base_url={llm.base_url}",
                                                   "--set", "llm.backend=openai", "--set", "loop.max_rounds=1",
                                                   "--set", "loop.min_rounds=1"),
                    "--concurrency", "4", "--out", str(tmp_path / "runs"), env={"OPENAI_API_KEY": FAKE_KEY})
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(srv.creates()) == 4 and srv.peak >= 3
    lines = [json.loads(x) for x in next((tmp_path / "runs").glob("*/results.jsonl")).read_text().splitlines()]
    assert [x["status"] for x in lines] == ["finished"] * 4


@pytest.mark.slow
def test_batch_max_cost_starts_no_job_past_the_budget(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a ball rolls down a ramp\na glass falls off a table\n")
    # 9 frames at 8 fps = 1.125 s x $1/s: the budget of $2 pays for one prompt's round, not a second video
    sets = ("--set", "generator.price_per_second=1.0", "--set", "loop.max_rounds=1", "--set", "loop.min_rounds=1")
    with VideosServer() as srv:
        p = run_cli("batch", str(prompts), *served(srv, *sets), "--max-cost", "2", "--concurrency", "1",
                    "--out", str(tmp_path / "runs"))
    assert p.returncode == 1, p.stderr[-3000:]
    assert len(srv.creates()) == 1
    assert "--max-cost reached" in p.stderr and "would pass --max-cost $2.00 ($1.12 spent)" in p.stderr
