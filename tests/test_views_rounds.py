"""Reading a batch: a round the batch does not have is refused (export and metrics), and a batch whose prompts were
all skipped by --min-physics says so. Batches made by the real Batch on the loop's doubles."""

import json

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm
from test_cli import assert_clean_error, run
from test_seeds_drafts import cot_llm

from phyt2v.batch import Batch
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import InputError
from phyt2v.loop import Refiner
from phyt2v.views.export import export
from phyt2v.views.metrics import summarize_batch


class ConstScorer(FakeScorer):
    def __init__(self):
        super().__init__([])

    def score(self, video, prompt):
        from phyt2v.roles import Scores

        return Scores(sa=0.6, pc=0.4)


def batch(tmp_path, prompts, llm, **loop):
    src = tmp_path / "p.txt"
    src.write_text("\n".join(prompts) + "\n")
    cfg = load_config(loop=loop)
    ref = Refiner(cfg, llm=llm, generator=FakeGenerator(), captioner=FakeCaptioner(), scorer=ConstScorer())
    b = Batch(load_source(str(src)), cfg, out=tmp_path / "out", refiner=ref, concurrency=1)
    assert b.run().merged
    return b.dir


@pytest.fixture
def two_rounds(tmp_path):
    return batch(tmp_path, ["a ball rolls down a ramp", "water pours into a glass"], physics_llm(),
                 max_rounds=2, min_rounds=2)


def test_export_of_a_round_the_batch_does_not_have_is_refused_naming_its_rounds(two_rounds, tmp_path):
    with pytest.raises(InputError, match=r"--round 9: this batch's prompts have rounds 1 to 2 "
                                         r"\(loop.max_rounds 2\); use first, best or 1 to 2"):
        export(two_rounds, "videophy-eval", which="9", out=tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
    res = export(two_rounds, "videophy-eval", which="2", out=tmp_path / "r2.csv")  # a round it has
    assert res.exported == 2 and res.missing == []
    p = run("export", str(two_rounds), "--format", "vbench", "--round", "3", "--out", str(tmp_path / "vb"))
    assert_clean_error(p, "--round 3", "rounds 1 to 2", code=2)
    assert not (tmp_path / "vb").exists()


def test_metrics_of_a_round_the_batch_does_not_have_is_refused(two_rounds):
    with pytest.raises(InputError, match=r"--round 9: this batch's prompts have rounds 1 to 2"):
        summarize_batch(two_rounds, round="9")
    assert summarize_batch(two_rounds, round="2")["rounds"]["2"]["overall"]["n"] == 2
    p = run("metrics", "auto", str(two_rounds), "--round", "9")
    assert_clean_error(p, "--round 9", "rounds 1 to 2", code=2)


def test_a_prompt_that_stopped_early_still_counts_with_its_last_round(tmp_path):
    """Round numbers up to loop.max_rounds stay valid when the runs stopped earlier (their last scored round)."""
    d = batch(tmp_path, ["a ball rolls down a ramp"], physics_llm(), max_rounds=3, min_rounds=1, threshold=0.4)
    line = json.loads((d / "results.jsonl").read_text())
    assert len(line["rounds"]) == 1 and line["stop_reason"] == "threshold"
    assert summarize_batch(d, round="3")["rounds"]["3"]["overall"]["n"] == 1
    with pytest.raises(InputError, match="rounds 1 to 3"):
        summarize_batch(d, round="4")


def test_metrics_on_a_batch_whose_prompts_were_all_skipped_by_min_physics_says_so(tmp_path):
    d = batch(tmp_path, ["a calm empty room", "a calm blue sky"], cot_llm({"calm": 0.2}), max_rounds=1,
              min_physics=0.6)
    with pytest.raises(InputError) as info:
        summarize_batch(d)
    msg = str(info.value)
    assert "all 2 finished prompt(s) were skipped by --min-physics" in msg and "not_physical" in msg
    assert "nothing to score" in msg and "no finished prompts yet" not in msg
    p = run("metrics", "auto", str(d))
    assert_clean_error(p, "all 2 finished prompt(s) were skipped by --min-physics", code=2)
