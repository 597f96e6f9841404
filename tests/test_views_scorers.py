"""Each scorer of a verifier ensemble side by side in the views: a table per scorer in the batch summary
(``phyt2v metrics auto``, ``--json``, the batch report) and each scorer's SA/PC in the report's round cards and
candidates."""

from __future__ import annotations

import json

import pytest
from doubles import FakeCaptioner, FakeGenerator, SeedScorer, physics_llm
from pytest import approx

from phyt2v.config import load_config
from phyt2v.views import metrics as M
from phyt2v.views import report

ENSEMBLE = {"backend": "ensemble", "ensemble": [{"backend": "videocon"}, {"backend": "videoscore2", "weight": 0.5}]}


def rnd(index, con, vs2, ratings):
    scorers = {"videocon": {"sa": con[0], "pc": con[1], "weight": 1.0},
               "videoscore2": {"sa": vs2[0], "pc": vs2[1], "weight": 0.5, "sa_rating": ratings[0],
                               "pc_rating": ratings[1]}}
    sa = (con[0] + 0.5 * vs2[0]) / 1.5
    pc = (con[1] + 0.5 * vs2[1]) / 1.5
    return {"index": index, "prompt": "p", "sa": sa, "pc": pc, "score": (sa + pc) / 2, "extra": {"scorers": scorers},
            "video": None, "caption": "c", "seed": 42, "draft": False, "candidates": []}


def line(pid, meta, rounds, best):
    return {"schema_version": 1, "id": pid, "index": 0, "prompt": pid, "meta": meta, "status": "finished",
            "run_id": pid, "run_dir": f"runs/{pid}", "best_round": best, "stop_reason": "max_rounds",
            "rounds": rounds, "error": None, "timings": {}, "config_hash": "h", "shard": [0, 1], "finished": "t"}


@pytest.fixture
def ens_batch(tmp_path):
    # videocon (probabilities, >= 0.5 counts): round 1 a 1/0, b 0/0; best a 1/1 (r2), b 0/1 (r1 is best for b)
    # videoscore2 (ratings, >= 4 counts): round 1 a 4/3, b 2/5; best a 5/4, b 2/5
    d = tmp_path / "b"
    d.mkdir()
    (d / "batch.json").write_text(json.dumps({"schema_version": 1, "source": {"name": "t", "kind": "videophy"},
                                              "config_hash": "h", "config": {"scorer": ENSEMBLE}, "total": 2}))
    S = {"states_of_matter": "solid_solid"}
    lines = [line("a", S, [rnd(1, (0.7, 0.2), (0.75, 0.5), (4, 3)), rnd(2, (0.8, 0.9), (1.0, 0.75), (5, 4))], 2),
             line("b", S, [rnd(1, (0.1, 0.6), (0.25, 1.0), (2, 5)), rnd(2, (0.1, 0.1), (0.0, 0.0), (1, 1))], 1)]
    (d / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_the_batch_summary_has_a_table_per_scorer(ens_batch):
    s = M.summarize_batch(ens_batch)
    assert list(s["scorers"]) == ["videocon", "videoscore2"]
    con, vs2 = s["scorers"]["videocon"], s["scorers"]["videoscore2"]
    assert con["kind"] == "videophy" and vs2["kind"] == "videophy2" and vs2["backend"] == "videoscore2"
    assert con["rounds"]["first"]["overall"] == {"n": 2, "sa": 0.5, "pc": 0.5, "joint": 0.0}
    assert con["rounds"]["best"]["overall"] == {"n": 2, "sa": 0.5, "pc": 1.0, "joint": 0.5}
    assert vs2["rounds"]["first"]["overall"] == {"n": 2, "sa_mean": 3.0, "pc_mean": 4.0, "sa": 0.5, "pc": 0.5,
                                                 "joint": 0.0}
    best = vs2["rounds"]["best"]["overall"]
    assert best["sa_mean"] == approx(3.5) and best["joint"] == 0.5
    assert s["kind"] == "videophy" and s["rounds"]["best"]["overall"]["n"] == 2  # the combination's own table


def test_a_single_scorer_batch_has_no_per_scorer_tables(tmp_path, ens_batch):
    header = json.loads((ens_batch / "batch.json").read_text())
    header["config"]["scorer"] = {"backend": "videocon"}
    (ens_batch / "batch.json").write_text(json.dumps(header))
    assert M.summarize_batch(ens_batch)["scorers"] == {}


def test_metrics_command_prints_each_scorers_tables(ens_batch):
    from typer.testing import CliRunner

    from phyt2v.cli.app import app

    r = CliRunner().invoke(app, ["metrics", "auto", str(ens_batch)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for title in ("scorer videocon (videophy), round 1", "scorer videocon (videophy), best round",
                  "scorer videoscore2 (videophy2), round 1", "scorer videoscore2 (videophy2), best round"):
        assert title in r.output
    data = json.loads(CliRunner().invoke(app, ["metrics", "auto", str(ens_batch), "--json"]).output)
    assert data["scorers"]["videoscore2"]["rounds"]["first"]["overall"]["pc_mean"] == 4.0


def test_the_batch_report_shows_each_scorers_table_and_round_cards(ens_batch):
    html = report.write_report(ens_batch).read_text()
    assert "<h3>Scorer videocon (videophy)</h3>" in html and "<h3>Scorer videoscore2 (videophy2)</h3>" in html
    card = html[html.index('id="p-a-r2"'):]
    card = card[: card.index("</table>")]
    assert '<table class="scorers">' in card and "<td>videoscore2</td><td class=\"num\">1.000</td>" in card
    assert "<td>videocon</td><td class=\"num\">0.800</td><td class=\"num\">0.900</td>" in card


def test_the_run_report_shows_each_scorer_per_candidate(tmp_path):
    from phyt2v.loop import Refiner
    from phyt2v.scorers.ensemble import EnsembleScorer

    scorer = EnsembleScorer({"x": SeedScorer({1: (0.95, 0.9), 2: (0.4, 0.3)}), "y": SeedScorer({1: (0.5, 0.6),
                                                                                              2: (0.6, 0.7)})},
                            {"x": 1.0, "y": 2.0})
    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1, "seed": 1, "seeds": 2}, out=str(tmp_path))
    res = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                  scorer=scorer).refine("a ball falls")
    html = report.write_report(res.run_dir).read_text()
    assert "x: SA 0.950, PC 0.900 · y: SA 0.500, PC 0.600" in html  # seed 1
    assert "x: SA 0.400, PC 0.300 · y: SA 0.600, PC 0.700" in html  # seed 2
    assert "<td>y</td><td class=\"num\">0.500</td><td class=\"num\">0.600</td><td class=\"num\">0.550</td>" \
           "<td class=\"num\">2.000</td>" in html  # the round's card: the chosen seed 1, y with its weight
    assert "scorers {" not in html  # the members are a table, not a dump in the extras line
