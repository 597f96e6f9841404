"""The whole refine loop through the CLI with a served captioner and judge: `phyt2v refine --preset smoke --set
captioner.backend=openai --set captioner.base_url=... --set captioner.model=M` (scorer vlm-judge, as smoke has it)
captions from frames sent to a loopback vision server and scores SA/PC from its logprobs; the tiny CogVideoX renders
real mp4s. With ``llm.backend=auto`` the LLM steps go to the same endpoint. The key never reaches disk."""

import json

import pytest
from test_e2e_smoke import FAKE_KEY, calls, no_secret_in, run_cli, the_run
from vlm_servers import JUDGE, VisionServer, expected

from phyt2v.captioners.vlm import caption_instruction
from phyt2v.scorers.judge_questions import PC_QUESTION, SA_QUESTION

PROMPT = "a rubber ball is dropped onto a wooden floor"


def served(srv, *extra):
    return ["--preset", "smoke", "--set", "captioner.backend=openai", "--set", f"captioner.base_url={srv.base_url}",
            "--set", "captioner.model=vision-test", *extra]


@pytest.mark.slow
def test_refine_smoke_with_a_served_captioner_and_judge(tmp_path):
    with VisionServer(frames=4, max_side=32) as srv:  # smoke: captioner and scorer num_frames 4, frame_size 32
        p = run_cli("refine", PROMPT, *served(srv), "--out", str(tmp_path), env={"OPENAI_API_KEY": FAKE_KEY})
    assert p.returncode == 0, p.stderr[-3000:]
    assert srv.rejected == []
    run_dir, rec = the_run(tmp_path)
    assert rec.status == "finished" and len(rec.rounds) == 2
    assert rec.models["captioner"] == "openai:vision-test" and rec.models["scorer"] == "vlm-judge:vision-test"
    assert rec.models["llm"].startswith("embedded:")  # smoke's own LLM: only captioner and judge are served
    sa, pc = expected(JUDGE["sa"]), expected(JUDGE["pc"])
    for r in rec.rounds:
        assert r.caption == "A ball falls and bounces on the floor, seen in 4 frames."
        assert r.scores.sa == pytest.approx(sa) and r.scores.pc == pytest.approx(pc)
    vision = srv.vision()
    assert len(vision) == 2 * 3  # per round: one caption, one request per judge question
    objects = rec.rules.objects
    for k in range(2):
        cap, q_sa, q_pc = vision[3 * k: 3 * k + 3]
        assert cap["text"] == caption_instruction(4, objects) and "logprobs" not in cap["body"]
        assert (q_sa["text"], q_pc["text"]) == (SA_QUESTION.format(prompt=PROMPT), PC_QUESTION)  # the ORIGINAL prompt
        assert q_sa["body"]["logprobs"] is True and q_sa["body"]["max_tokens"] == 1
        for r in (cap, q_sa, q_pc):
            assert r["media"]["images"] == [(16, 16)] * 4  # the tiny generator's 16x16 frames, four of them
            assert r["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    log = calls(run_dir)
    assert {e["backend"] for e in log if e["role"] == "captioner"} == {"openai"}
    assert all(e["ok"] for e in log if e["role"] in ("captioner", "scorer"))
    no_secret_in(run_dir, FAKE_KEY)
    assert FAKE_KEY not in p.stdout + p.stderr


@pytest.mark.slow
def test_auto_llm_steps_go_through_the_captioners_endpoint(tmp_path):
    with VisionServer(frames=4) as srv:  # text-only chats answered as StepServer does (valid JSON per step)
        p = run_cli("refine", PROMPT, *served(srv, "--set", "llm.backend=auto"), "--out", str(tmp_path), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(tmp_path)
    assert rec.models["llm"] == "openai:vision-test" and rec.status == "finished"
    text_only = [r for r in srv.requests if r["media"] is None]
    llm_calls = [e for e in calls(run_dir) if e["role"] == "llm"]
    assert len(text_only) == len(llm_calls) >= 3  # rules, mismatch, refine: every one to the captioner's endpoint
    assert all(r["body"]["model"] == "vision-test" for r in text_only)
    assert json.loads(p.stdout)["best_round"] in (1, 2)


@pytest.mark.slow
def test_an_endpoint_without_logprobs_stops_the_run_in_one_line(tmp_path):
    with VisionServer(logprobs=False) as srv:
        p = run_cli("refine", PROMPT, *served(srv, "--set", "llm.backend=auto", "--set", "loop.max_rounds=1",
                                              "--set", "loop.min_rounds=1"), "--out", str(tmp_path))
    assert p.returncode == 1, p.stderr[-3000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no logprobs" in errors[0] and "Traceback" not in p.stderr
    assert "vLLM" in p.stderr and "scorer.backend=videocon" in p.stderr
