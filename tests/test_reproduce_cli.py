"""``phyt2v reproduce`` end to end on the smoke preset (embedded SmolLM2, tiny CogVideoX and Qwen2-VL, the
shared benchmark copies): the confirmation refusal, bad input, the paper-vs-ours JSON of phyt2v-table1 after a
SIGKILL mid-batch and a resume that redoes no finished generation, and PhyGenBench's export-then-results path."""

import json
import os
import subprocess
import sys

import pytest
from conftest import SHARED
from test_e2e_batch import ENV, kill_when_captioned

from phyt2v.batch import folder as batchdir
from phyt2v.views import metrics as M


def cmd(table, out, *extra):
    return [sys.executable, "-m", "phyt2v", "reproduce", table, "--preset", "smoke", "--out", str(out),
            "--set", "llm.options.n_threads=1", *extra]


def run(args, timeout=900, stdin=subprocess.DEVNULL):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=stdin,
                          env={**os.environ, **ENV})


def the_batch(out):
    dirs = [p for p in out.iterdir() if batchdir.is_batch_dir(p)]
    assert len(dirs) == 1, dirs
    return dirs[0]


def generator_calls(run_dir):
    return [c for c in map(json.loads, (run_dir / "calls.jsonl").read_text().splitlines()) if c["role"] == "generator"]


def all_calls(batch):
    return sum(len(p.read_text().splitlines()) for p in batch.glob("runs/*/calls.jsonl"))


@pytest.fixture
def videophy(shared_dir):
    return shared_dir / "benchmarks" / "videophy" / "videophy_test_prompts.csv"


def test_refuses_without_yes_when_stdin_is_not_a_terminal(tmp_path, videophy):
    r = run(cmd("phyt2v-table1", tmp_path, "--limit", "2", "--from", str(videophy)), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "pass --yes" in last and "2 prompt(s)" in last
    assert "estimate: 2 prompt(s), up to 8 video(s): estimated" in r.stderr and "CPU minutes" in r.stderr
    assert not any(batchdir.is_batch_dir(p) for p in tmp_path.iterdir())  # nothing started, nothing written
    assert r.stdout == ""


@pytest.mark.parametrize("args,msg", [
    (("phygdpo-videophy2", "--yes"), "add --set scorer.backend=videophy2"),
    (("phyt2v-table1", "--results", "x.json"), "--results applies to phygenbench"),
    (("phyt2v-tabel1",), "Did you mean phyt2v-table1"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, msg):
    r = run(cmd(args[0], tmp_path, *args[1:]), timeout=120)
    assert r.returncode == 2 and msg in r.stderr.strip().splitlines()[-1], r.stderr[-2000:]


# ---------------------------------------------------------------- phyt2v-table1, killed and resumed

@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """phyt2v-table1 on 2 prompts, 2 rounds: SIGKILLed once prompt 2 has captioned its round 1, then rerun."""
    src = SHARED / "benchmarks" / "videophy" / "videophy_test_prompts.csv"
    if not src.is_file():
        pytest.skip(f"no VideoPhy prompts at {src} (../shared holds the benchmark copies)")
    out = tmp_path_factory.mktemp("reproduce")
    args = cmd("phyt2v-table1", out, "--limit", "2", "--rounds", "2", "--from", str(src), "--yes", "--json")
    kill_when_captioned(args, out, "runs/0001-*/run.json", "prompt 2")
    batch = the_batch(out)
    killed = {p.name: generator_calls(p) for p in batch.glob("runs/*") if (p / "calls.jsonl").is_file()}
    lines_before = batchdir.read_results(batch)
    r = run(args)
    assert r.returncode == 0, r.stderr[-3000:]
    return {"args": args, "out": out, "batch": batch, "killed": killed, "lines_before": lines_before,
            "stderr": r.stderr, "report": json.loads(r.stdout)}


@pytest.mark.slow
def test_resume_after_sigkill_redoes_no_finished_generation(resumed):
    batch, killed = resumed["batch"], resumed["killed"]
    assert list(resumed["lines_before"]) == [next(iter(resumed["lines_before"]))]  # prompt 1 done, prompt 2 not
    assert "1 already done, 1 to run" in resumed["stderr"]
    first = next(n for n in killed if n.startswith("0000-"))
    second = next(n for n in killed if n.startswith("0001-"))
    assert generator_calls(batch / "runs" / first) == killed[first] and len(killed[first]) == 2  # untouched
    after = generator_calls(batch / "runs" / second)
    assert len(killed[second]) == 1 and after[:1] == killed[second] and len(after) == 2  # round 1 not redone
    assert "estimate: 1 prompt(s), up to 2 video(s)" in resumed["stderr"]  # only what is left is estimated


@pytest.mark.slow
def test_json_carries_the_papers_numbers_and_labels_ours_meaningless(resumed):
    rep = resumed["report"]
    assert rep["table"] == "phyt2v-table1" and rep["meaningless"] is True and rep["paper_model"] == "CogVideoX-5B"
    assert any("MEANINGLESS" in n for n in rep["notes"])
    stored = rep["paper_table"]["models"]["CogVideoX-5B"]
    assert {(n["column"], n["value"]) for n in stored} == {("round 1 SA", 0.48), ("round 1 PC", 0.26),
                                                           ("round 4 SA", 0.59), ("round 4 PC", 0.42)}
    assert all(n["source"] for m in rep["paper_table"]["models"].values() for n in m)
    rows = {(x["row"], x["column"]): x for x in rep["rows"]}
    # ours are exactly `phyt2v metrics videophy` on the batch folder: round 1 and the best round
    want = M.summarize_batch(resumed["batch"], "videophy", group_by=["states_of_matter"])["rounds"]
    for col, which, key in (("round 1 PC", "first", "pc"), ("round 4 SA", "best", "sa")):
        line = rows[("overall", col)]
        assert line["ours"] == want[which]["overall"][key] and line["n"] == 2
        assert line["diff"] == pytest.approx(line["ours"] - line["paper"])
    cats = {x["row"] for x in rep["rows"] if x["n"]} - {"overall"}
    assert cats == {"solid_fluid", "fluid_fluid"}  # the first two prompts' states_of_matter


@pytest.mark.slow
def test_finished_reproduce_rerun_asks_nothing_and_calls_no_model(resumed):
    batch = resumed["batch"]
    before = all_calls(batch)
    args = [a for a in resumed["args"] if a != "--yes"]
    r = run(args)  # stdin not a terminal and no --yes: fine, nothing is left to run
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nothing left to run" in r.stderr and all_calls(batch) == before > 0
    assert json.loads(r.stdout)["rows"] == resumed["report"]["rows"]


# ---------------------------------------------------------------- PhyGenBench: export, then PhyGenEval's results

@pytest.mark.slow
def test_phygenbench_exports_says_what_next_then_compares_results(tmp_path, shared_dir):
    src = shared_dir / "benchmarks" / "phygenbench" / "prompts.json"
    args = cmd("phygenbench", tmp_path, "--limit", "1", "--rounds", "1", "--from", str(src), "--yes", "--json")
    r = run(args)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep["status"].startswith("needs PhyGenEval") and any("overall.py" in s for s in rep["next"])
    for which in ("first", "best"):
        assert (tmp_path.joinpath(rep["exports"][which]) / "output_video_1.mp4").is_file()
    assert all(x["ours"] is None and x["paper"] is not None for x in rep["rows"])  # no number made up

    items = json.loads(src.read_text())
    for i, it in enumerate(items):  # a PhyGenEval result file: prompts.json items plus the five stage scores
        it.update(single=i % 4, multi_gpt=(i + 1) % 4, multi_llava=i % 3, video_gpt=(i + 2) % 4, video_intern=i % 2)
    res = tmp_path / "result.json"
    res.write_text(json.dumps(items))
    r = run([*args, "--results", f"first={res}"])
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    want = M.summarize_file("phygenbench", res)
    avg = next(x for x in rep["rows"] if x["row"] == "Average")
    assert rep["status"] == "compared" and avg["ours"] == want["average"] and avg["paper"] == 0.45
    assert {x["ours_round"] for x in rep["rows"]} == {"first"}  # only round 1's results were given
    assert avg["diff"] == pytest.approx(want["average"] - 0.45) and avg["n"] == 160
