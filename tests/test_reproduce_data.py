"""``phyt2v reproduce``'s parts without a batch: the papers' numbers and their sources, the paper-vs-ours
comparison, the --results parser, and the GPU-hours estimate (pure functions, no model loads)."""

import pytest

from phyt2v.config import load_config
from phyt2v.errors import InputError
from phyt2v.runtime import costs
from phyt2v.views import papers
from phyt2v.views import reproduce as R

ALL_NUMBERS = [(t, m, n) for t in papers.TABLES.values() for m, ns in t.models.items() for n in ns]


def test_tables_and_numbers_are_present():
    assert set(papers.TABLES) == {"phyt2v-table1", "phygdpo-videophy2", "phygenbench"}
    assert len(ALL_NUMBERS) >= 40  # 8 leaderboard rows x 5 categories, plus PhyT2V's overall cells


@pytest.mark.parametrize("table,model,number", ALL_NUMBERS, ids=lambda x: getattr(x, "name", None) or str(x)[:24])
def test_every_stored_number_has_its_source_and_is_shown(table, model, number):
    """A number reaches the output only through (row, column) of its table: a number stored under a row or column
    the table does not print would be a number nobody sees; a number without a source is not to be trusted."""
    assert 0.0 <= number.value <= 1.0
    assert isinstance(number.verified, bool)
    src = number.source
    assert number.row in src and all(tok in src for tok in model.split())     # the row and the model are named
    assert any(k in src for k in ("README.md", "Table 1", "GUIDE.md"))          # the document and table are named
    assert number.row in table.rows
    assert number.column in {c.name for c in table.columns}
    if not number.verified:  # second-hand: the source says it was not checked in the paper
        assert "not checked" in src


def test_tables_without_all_numbers_say_so():
    for t in papers.TABLES.values():
        shown = {(n.row, n.column) for ns in t.models.values() for n in ns}
        if len(shown) < len(t.rows) * len(t.columns):
            assert t.missing, f"{t.name} lacks cells but does not say so"
    assert papers.PHYGDPO_VIDEOPHY2.models == {}   # nothing read: nothing stored, never a made-up value
    assert "could not be read" in papers.PHYGDPO_VIDEOPHY2.missing


def test_phyt2v_overall_cells_are_the_quoted_ones():
    cells = {(n.row, n.column): n.value for n in papers.PHYT2V_TABLE1.numbers("CogVideoX-5B")}
    assert cells == {("overall", "round 1 SA"): 0.48, ("overall", "round 1 PC"): 0.26,
                     ("overall", "round 4 SA"): 0.59, ("overall", "round 4 PC"): 0.42}


def test_paper_model_matches_the_generator():
    assert papers.paper_model(papers.PHYGENBENCH, "THUDM/CogVideoX-2b") == "CogVideoX 2B"
    assert R.paper_row_of(papers.PHYT2V_TABLE1, "thudm/cogvideox-5b") == ("CogVideoX-5B", [])
    model, warn = R.paper_row_of(papers.PHYT2V_TABLE1, "tiny")
    assert model == "CogVideoX-5B" and "different models" in warn[0]
    assert R.paper_row_of(papers.PHYGDPO_VIDEOPHY2, "x") == (None, [])


def test_table_named_suggests():
    assert R.table_named(" PhyGenBench ").name == "phygenbench"
    with pytest.raises(InputError, match="Did you mean phyt2v-table1"):
        R.table_named("phyt2v-tabel1")


# ---------------------------------------------------------------- comparison

def summary_table(overall, groups, hard=None):
    return {"overall": overall, "groups": groups, "hard": hard}


def test_compare_diff_is_ours_minus_paper_and_missing_stays_missing():
    t = papers.PHYT2V_TABLE1
    first = summary_table({"n": 4, "sa": 0.5, "pc": 0.25, "joint": 0.25},
                          {"states_of_matter": {"solid_fluid": {"n": 4, "sa": 0.5, "pc": 0.25, "joint": 0.25}}})
    best = summary_table({"n": 4, "sa": 0.75, "pc": 0.5, "joint": 0.5}, {"states_of_matter": {}})
    ours = {"first": R.batch_rows(t, first), "best": R.batch_rows(t, best)}
    lines = {(x["row"], x["column"]): x for x in R.compare(t, "CogVideoX-5B", ours, t.columns)}
    assert len(lines) == len(t.rows) * len(t.columns)
    pc4 = lines[("overall", "round 4 PC")]
    assert (pc4["paper"], pc4["ours"], pc4["n"], pc4["ours_round"]) == (0.42, 0.5, 4, "best")
    assert pc4["diff"] == pytest.approx(0.5 - 0.42) and pc4["verified"] is False and "GUIDE.md" in pc4["source"]
    sa1 = lines[("overall", "round 1 SA")]
    assert sa1["diff"] == pytest.approx(0.5 - 0.48)
    cat = lines[("solid_fluid", "round 1 PC")]
    assert (cat["paper"], cat["ours"], cat["diff"], cat["source"]) == (None, 0.25, None, None)
    empty = lines[("solid_solid", "round 4 SA")]
    assert (empty["ours"], empty["n"], empty["diff"]) == (None, None, None)


def test_videophy2_rows_hard_and_free_text_categories_weighted():
    t = papers.PHYGDPO_VIDEOPHY2
    groups = {"category": {"Sports & Physical Activities": {"n": 3, "joint": 1 / 3, "sa": 0.5},
                           "Object Interactions": {"n": 1, "joint": 1.0, "sa": 1.0},
                           "Physical Activities (indoor)": {"n": 1, "joint": 0.0, "sa": 0.0}}}
    rows = R.batch_rows(t, summary_table({"n": 5, "joint": 0.4}, groups, hard={"n": 2, "joint": 0.5}))
    assert rows["overall"]["joint"] == 0.4 and rows["hard"] == {"n": 2, "joint": 0.5}
    assert rows["interaction"] == {"n": 1, "joint": 1.0, "sa": 1.0}
    assert rows["activity"]["n"] == 4 and rows["activity"]["joint"] == pytest.approx(1 / 4)  # (1 + 0) of 4
    none = R.batch_rows(t, summary_table({"n": 5, "joint": 0.4}, {}, hard=None))
    assert none["activity"] is None and none["hard"] is None


def test_phygenbench_rows_and_columns_per_result_file():
    t = papers.PHYGENBENCH
    result = {"categories": {"Mechanics": 0.5, "Optics": None, "Thermal": 0.25, "Material": 1.0},
              "average": 0.6, "n": {"Mechanics": 2, "Optics": 0, "Thermal": 4, "Material": 1, "all": 7}}
    cols = R.columns_for(t, ["first"])
    lines = R.compare(t, "CogVideoX 5B", {"first": R.phygen_rows(result)}, cols)
    avg = next(x for x in lines if x["row"] == "Average")
    assert (avg["paper"], avg["ours"], avg["n"]) == (0.45, 0.6, 7) and avg["diff"] == pytest.approx(0.15)
    assert "row 'CogVideoX | 5B', column 'Average'" in avg["source"] and avg["verified"] is True
    assert next(x for x in lines if x["row"] == "Optics")["diff"] is None
    assert R.columns_for(t, []) == ()


def test_parse_results(tmp_path):
    f = tmp_path / "r.json"
    f.write_text("[]")
    assert R.parse_results([str(f)]) == {"best": f}
    assert R.parse_results([f"first={f}", f"best={f}"]) == {"first": f, "best": f}
    with pytest.raises(InputError, match="given twice"):
        R.parse_results([str(f), f"best={f}"])
    with pytest.raises(InputError, match="no such file"):
        R.parse_results([f"first={tmp_path / 'nope.json'}"])


# ---------------------------------------------------------------- estimate

def test_estimate_scales_with_prompts_rounds_and_seeds():
    cfg = load_config("cogvideox-5b")
    one = costs.estimate(cfg, 1)
    assert one.unit == "GPU-hours" and one.videos == 4 and one.seconds == pytest.approx(4 * one.seconds_per_video)
    assert costs.estimate(cfg, 10).seconds == pytest.approx(10 * one.seconds)
    more = load_config("cogvideox-5b", overrides=["loop.max_rounds=2", "loop.seeds=3"])
    assert costs.estimate(more, 1).videos == 6
    assert costs.estimate(more, 1).seconds == pytest.approx(6 * one.seconds_per_video)
    assert "GPU-hours" in one.line() and "denoising only" in one.line()


def test_estimate_against_the_cogvideox_card():
    """The module doc's check: at 50% of an A100's 312 TFLOP/s the formula gives ~245 s for CogVideoX-5B's 50
    steps (the model card: ~200 s); on the H100 assumed it is 312/989 of that."""
    per = costs.seconds_per_video(load_config("cogvideox-5b"))
    assert per * costs.H100_BF16_FLOPS / 312e12 == pytest.approx(245, rel=0.03)
    assert costs.seconds_per_video(load_config("cogvideox-2b")) < per  # fewer parameters, narrower attention


def test_estimate_smoke_unknown_and_nothing_left():
    smoke = costs.estimate(load_config("smoke"), 2)
    assert smoke.unit == "CPU minutes" and "no GPU" in smoke.line()
    assert smoke.value == pytest.approx((60 + 2 * 2 * 20) / 60)
    unknown = costs.estimate(load_config("cogvideox-5b", overrides=["generator.model=someone/unknown-model"]), 3)
    assert unknown.value is None and "no time estimate" in unknown.line()
    assert "nothing left to run" in costs.estimate(load_config("cogvideox-5b"), 0).line()
