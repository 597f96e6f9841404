"""Benchmark metrics: hand-computed tables for VideoPhy, VideoPhy-2, PhyGenBench and batch directories."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from phyt2v.batch.tables import read_rows
from phyt2v.cli import app
from phyt2v.errors import InputError
from phyt2v.views import metrics as M
from phyt2v.views.metrics import summarize_file

approx = pytest.approx


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args):
    return CliRunner().invoke(app, ["metrics", *map(str, args)])


def run(*args):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PHYT2V_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "phyt2v", "metrics", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


# ---------------------------------------------------------------- VideoPhy

# 4 videos, 2 groups. SA=1 when sa >= 0.5 (0.5 itself counts), PC=1 when pc >= 0.5 (0.49 does not):
#   a solid_solid 0.5 / 0.49 -> SA1 PC0      b solid_solid 0.9 / 0.7 -> SA1 PC1
#   c fluid_fluid 1 / 1      -> SA1 PC1      d fluid_fluid 0 / 1     -> SA0 PC1
# overall SA 3/4, PC 3/4, joint (b, c) 2/4; solid_solid SA 2/2 PC 1/2 joint 1/2;
# fluid_fluid SA 1/2 PC 2/2 joint 1/2.
VIDEOPHY_CSV = ("caption,states_of_matter,sa,pc\n\"a, with comma\",solid_solid,0.5,0.49\nb,solid_solid,0.9,0.7\n"
                "c,fluid_fluid,1,1\nd,fluid_fluid,0,1\n")


def test_videophy_csv_threshold_and_groups(tmp_path):
    t = summarize_file("videophy", write(tmp_path / "s.csv", VIDEOPHY_CSV))
    assert t["overall"] == {"n": 4, "sa": 0.75, "pc": 0.75, "joint": 0.5}
    g = t["groups"]["states_of_matter"]
    assert g["solid_solid"] == {"n": 2, "sa": 1.0, "pc": 0.5, "joint": 0.5}
    assert g["fluid_fluid"] == {"n": 2, "sa": 0.5, "pc": 1.0, "joint": 0.5}


def test_videophy_jsonl_majority_columns_and_01_labels(tmp_path):
    # human labels (1,1), (1,0), (0,0): SA 2/3, PC 1/3, joint 1/3; no states_of_matter -> no groups
    lines = [{"caption": "x", "majority_sa": 1, "majority_pc": 1}, {"caption": "y", "majority_sa": 1, "majority_pc": 0},
             {"caption": "z", "majority_sa": 0, "majority_pc": 0}]
    p = write(tmp_path / "h.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    t = summarize_file("videophy", p)
    assert t["columns"] == {"sa": "majority_sa", "pc": "majority_pc"}
    assert t["overall"] == {"n": 3, "sa": approx(2 / 3), "pc": approx(1 / 3), "joint": approx(1 / 3)}
    assert t["groups"] == {}
    # explicit grouping by another column
    t = M.videophy_table([{"sa": 1, "pc": 0, "k": "a"}, {"sa": 0.2, "pc": 0.8, "k": "b"}], ["k"])
    assert t["groups"]["k"] == {"a": {"n": 1, "sa": 1.0, "pc": 0.0, "joint": 0.0},
                                "b": {"n": 1, "sa": 0.0, "pc": 1.0, "joint": 0.0}}


def test_videophy_errors(tmp_path):
    with pytest.raises(InputError, match="no physical commonsense column.*columns present are: caption, sa"):
        M.videophy_table([{"caption": "x", "sa": 1}])
    p = write(tmp_path / "bad.csv", "caption,sa,pc\nx,0.2,0.3\ny,1.7,0.1\n")
    with pytest.raises(InputError, match=r"bad.csv:3: sa = '1.7' is not a probability"):
        summarize_file("videophy", p)
    with pytest.raises(InputError, match="is empty"):
        read_rows(write(tmp_path / "e.csv", ""))
    with pytest.raises(InputError, match="no data rows"):
        read_rows(write(tmp_path / "h.csv", "caption,sa,pc\n"))
    with pytest.raises(InputError, match="--group-by nope: no such column"):
        summarize_file("videophy", write(tmp_path / "s.csv", VIDEOPHY_CSV), ["nope"])


# ---------------------------------------------------------------- VideoPhy-2

# (sa, pc, hard): r1 4/4 hard, r2 3/5, r3 5/3 hard, r4 2/2, r5 5/5 hard
# overall: mean SA 19/5 = 3.8, mean PC 19/5 = 3.8, SA>=4 {r1,r3,r5} 3/5, PC>=4 {r1,r2,r5} 3/5,
#          joint (both >= 4: r1, r5; not 3/5 nor 5/3) 2/5
# hard {r1,r3,r5}: mean SA 14/3, mean PC 12/3 = 4, SA>=4 3/3, PC>=4 2/3, joint 2/3
# group cat: A {r1,r2} joint 1/2; B {r3,r4,r5} joint 1/3
VIDEOPHY2_CSV = ("caption,cat,sa,pc,is_hard\nr1,A,4,4,1\nr2,A,3,5,0\nr3,B,5,3,yes\nr4,B,2,2,false\n"
                 "r5,B,5,5,TRUE\n")


def test_videophy2_joint_hard_and_groups(tmp_path):
    t = summarize_file("videophy2", write(tmp_path / "v2.csv", VIDEOPHY2_CSV), ["cat"])
    assert t["overall"] == {"n": 5, "sa_mean": 3.8, "pc_mean": 3.8, "sa": 0.6, "pc": 0.6, "joint": 0.4}
    assert t["hard_column"] == "is_hard"
    assert t["hard"] == {"n": 3, "sa_mean": approx(14 / 3), "pc_mean": 4.0, "sa": 1.0, "pc": approx(2 / 3),
                         "joint": approx(2 / 3)}
    assert t["groups"]["cat"]["A"]["joint"] == 0.5 and t["groups"]["cat"]["B"]["joint"] == approx(1 / 3)


def test_videophy2_hard_column_option_and_none(tmp_path):
    rows = [{"sa": "4", "pc": "5.0", "tough": "yes"}, {"sa": 1, "pc": 1, "tough": "no"}]
    t = M.videophy2_table(rows, hard_column="tough")
    assert t["hard"]["n"] == 1 and t["hard"]["joint"] == 1.0 and t["overall"]["joint"] == 0.5
    assert M.videophy2_table(rows)["hard"] is None
    with pytest.raises(InputError, match="--hard-column nope: no such column"):
        M.videophy2_table(rows, hard_column="nope")
    # the `phyt2v score` output: ratings in sa_rating/pc_rating, sa/pc scaled to [0, 1]
    t = M.videophy2_table([{"sa": 0.75, "pc": 1.0, "sa_rating": 4, "pc_rating": 5}])
    assert t["columns"] == {"sa": "sa_rating", "pc": "pc_rating"} and t["overall"]["joint"] == 1.0


@pytest.mark.parametrize("bad", ["4.5", "6", "0", "abc", ""])
def test_videophy2_bad_rating_names_file_and_line(tmp_path, bad):
    p = write(tmp_path / "v2.csv", f"caption,sa,pc\nx,4,4\ny,3,{bad}\n")
    with pytest.raises(InputError, match=r"v2.csv:3: pc = .* is not an integer rating 1\.\.5"):
        summarize_file("videophy2", p)


# ---------------------------------------------------------------- PhyGenBench

def item(cat, s, mg, vg, ml, vi):
    return {"main_category": cat, "single": s, "multi_gpt": mg, "video_gpt": vg, "multi_llava": ml,
            "video_intern": vi}


# closed = round((single + multi_gpt + video_gpt) / 3), open = round((single + multi_llava + video_intern) / 3),
# final = (closed + open) // 2
#   0 Force:    closed (1+2+2)/3 = 1.67 -> 2, open (1+1+1)/3 = 1 -> 1,       final (2+1)//2 = 1 (1.5 floors to 1)
#   1 Force:    closed (3+3+2)/3 = 2.67 -> 3, open 9/3 = 3,                  final 3
#   2 Light:    closed (0+0+1)/3 = 0.33 -> 0, open 0,                        final 0
#   3 Heat:     closed (2+2+1)/3 = 1.67 -> 2, open (2+2+2)/3 = 2,            final 2
#   4 Physical: closed (1+1+2)/3 = 1.33 -> 1, open (1+3+3)/3 = 2.33 -> 2,    final (1+2)//2 = 1
#   5 Chemical: closed 9/3 = 3,               open (3+2+3)/3 = 2.67 -> 3,    final 3
# Mechanics (1+3)/2/3 = 2/3, Optics 0, Thermal 2/3, Material (1+3)/2/3 = 2/3 (both property categories merged),
# Average over all 6 prompts = (1+3+0+2+1+3)/6/3 = 10/18 = 5/9 (the mean of the 4 categories would be 0.5).
ITEMS = [item("Force", 1, 2, 2, 1, 1), item("Force", 3, 3, 2, 3, 3), item("Light", 0, 0, 1, 0, 0),
         item("Heat", 2, 2, 1, 2, 2), item("Physical Properties", 1, 1, 2, 3, 3),
         item("Chemical Properties", 3, 3, 3, 2, 3)]


def test_phygenbench_closed_open_final():
    assert [M.phygenbench_final(x) for x in ITEMS] == [(2, 1, 1), (3, 3, 3), (0, 0, 0), (2, 2, 2), (1, 2, 1),
                                                       (3, 3, 3)]
    # closed uses the GPT-4o stages only, open the LLaVA + InternVideo2 ones
    assert M.phygenbench_final(item("Force", 0, 3, 3, 0, 0)) == (2, 0, 1)
    assert M.phygenbench_final(item("Force", 0, 0, 0, 3, 3)) == (0, 2, 1)
    # (closed + open) = 5 -> 2.5 floors to 2; integral floats are accepted
    assert M.phygenbench_final(item("Force", 3.0, 3, 3, 2, 2))[2] == (3 + 2) // 2 == 2


def test_phygenbench_table(tmp_path):
    t = summarize_file("phygenbench", write(tmp_path / "r.json", json.dumps(ITEMS)))
    assert t["categories"] == {"Mechanics": approx(2 / 3), "Optics": 0.0, "Thermal": approx(2 / 3),
                               "Material": approx(2 / 3)}
    assert t["average"] == approx(5 / 9)
    assert t["n"] == {"Mechanics": 2, "Optics": 1, "Thermal": 1, "Material": 2, "all": 6}


def test_phygenbench_fractional_stages_round_half_to_even():
    # closed (1.5 + 3 + 3) / 3 = 2.5 -> round() gives 2 (ties to even, not 3);
    # open (1.5 + 0 + 3) / 3 = 1.5 -> 2 (ties to even); final (2 + 2) // 2 = 2
    item = {"single": 1.5, "multi_gpt": 3, "video_gpt": 3, "multi_llava": 0, "video_intern": 3,
            "main_category": "Force"}
    assert M.phygenbench_final(item) == (2, 2, 2)
    # closed (0.5 + 1 + 0) / 3 = 0.5 -> 0; open (0.5 + 3 + 3) / 3 = 2.1667 -> 2; final (0 + 2) // 2 = 1
    item = {"single": 0.5, "multi_gpt": 1, "video_gpt": 0, "multi_llava": 3, "video_intern": 3,
            "main_category": "Force"}
    assert M.phygenbench_final(item) == (0, 2, 1)


@pytest.mark.parametrize("bad, msg", [({"video_intern": None}, "item index 2: 'video_intern' = None"),
                                      ({"multi_gpt": 4}, "item index 2: 'multi_gpt' = 4 is not a number 0..3"),
                                      ({"single": -0.5}, "item index 2: 'single' = -0.5"),
                                      ({"video_gpt": True}, "item index 2: 'video_gpt' = True"),
                                      ({"main_category": "Sound"}, "item index 2: main_category 'Sound'")])
def test_phygenbench_bad_items(bad, msg):
    items = [dict(x) for x in ITEMS]
    items[2].update(bad)
    with pytest.raises(InputError, match=msg.replace("(", r"\(").replace(".", r"\.")):
        M.phygenbench_table(items)
    items[2] = {k: v for k, v in ITEMS[2].items() if k != "single"}
    with pytest.raises(InputError, match="item index 2: 'single' is missing"):
        M.phygenbench_table(items)


# ---------------------------------------------------------------- batch directories

def rnd(i, sa, pc, score=None, **extra):
    return {"index": i, "prompt": f"p{i}", "sa": sa, "pc": pc, "score": (sa + pc) / 2 if score is None else score,
            "extra": extra, "video": f"runs/x/round-{i}/video.mp4", "caption": "c"}


def line(pid, index, meta, status, finished, rounds=(), best=None):
    return {"schema_version": 1, "id": pid, "index": index, "prompt": pid, "meta": meta, "status": status,
            "run_id": pid, "run_dir": f"runs/{pid}", "best_round": best, "stop_reason": None, "rounds": list(rounds),
            "error": None if status == "finished" else {"step": "generate", "kind": "X", "message": "boom"},
            "timings": {}, "config_hash": "h", "shard": [0, 1], "finished": finished}


def make_batch(path, backend, lines):
    path.mkdir()
    write(path / "batch.json", json.dumps({"schema_version": 1, "source": {"name": "t", "kind": "videophy"},
                                           "config_hash": "h", "config": {"scorer": {"backend": backend}},
                                           "total": 4}))
    write(path / "results.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    return path


SS, FF = {"states_of_matter": "solid_solid"}, {"states_of_matter": "fluid_fluid"}


@pytest.fixture
def vp_batch(tmp_path):
    # p1: an older finished line (superseded) and a newer one; round 1 (0.3,0.6) -> SA0 PC1, best r2 (0.8,0.7) 1/1
    # p2: r1 (0.9,0.9) 1/1 is best, r2 (0.2,0.2) 0/0
    # p3: failed first, then finished later: r1 (0.6,0.4) 1/0, best r2 (0.7,0.6) 1/1
    # p4: failed only -> excluded, counted in n_failed
    return make_batch(tmp_path / "b", "videocon", [
        line("p1", 0, SS, "finished", "2026-01-01T00:00:00", [rnd(1, 0.0, 0.0)], best=1),
        line("p1", 0, SS, "finished", "2026-01-02T00:00:00", [rnd(1, 0.3, 0.6), rnd(2, 0.8, 0.7)], best=2),
        line("p2", 1, SS, "finished", "2026-01-01T00:00:00", [rnd(1, 0.9, 0.9), rnd(2, 0.2, 0.2)], best=1),
        line("p3", 2, FF, "failed", "2026-01-01T00:00:00"),
        line("p4", 3, FF, "failed", "2026-01-01T00:00:00"),
        line("p3", 2, FF, "finished", "2026-01-03T00:00:00", [rnd(1, 0.6, 0.4), rnd(2, 0.7, 0.6)], best=2),
    ])


def test_batch_videophy_first_best_gain(vp_batch):
    s = M.summarize_batch(vp_batch)
    assert s["kind"] == "videophy" and s["n_finished"] == 3 and s["n_failed"] == 1 and s["warnings"] == []
    first, best = s["rounds"]["first"], s["rounds"]["best"]
    # round 1: p1 0/1, p2 1/1, p3 1/0 -> SA 2/3, PC 2/3, joint 1/3
    assert first["overall"] == {"n": 3, "sa": approx(2 / 3), "pc": approx(2 / 3), "joint": approx(1 / 3)}
    assert first["groups"]["states_of_matter"]["fluid_fluid"] == {"n": 1, "sa": 1.0, "pc": 0.0, "joint": 0.0}
    assert first["groups"]["states_of_matter"]["solid_solid"] == {"n": 2, "sa": 0.5, "pc": 1.0, "joint": 0.5}
    # best: all 1/1
    assert best["overall"] == {"n": 3, "sa": 1.0, "pc": 1.0, "joint": 1.0}
    assert s["gain"]["overall"] == {"sa": approx(1 / 3), "pc": approx(1 / 3), "joint": approx(2 / 3)}
    assert s["gain"]["groups"]["states_of_matter"]["fluid_fluid"] == {"sa": 0.0, "pc": 1.0, "joint": 1.0}
    assert s["gain"]["groups"]["states_of_matter"]["solid_solid"] == {"sa": 0.5, "pc": 0.0, "joint": 0.5}
    # --round 2: p1 1/1, p2 0/0, p3 1/1 -> 2/3 each
    s2 = M.summarize_batch(vp_batch, round="2")
    assert list(s2["rounds"]) == ["2"] and s2["gain"] is None
    assert s2["rounds"]["2"]["overall"] == {"n": 3, "sa": approx(2 / 3), "pc": approx(2 / 3), "joint": approx(2 / 3)}


@pytest.fixture
def v2_batch(tmp_path):
    # ratings from extra; q3's round 1 SA was unparseable -> excluded from round 1 only
    # round 1: q1 3/4, q2 5/3 -> mean SA 4, mean PC 3.5, SA>=4 1/2, PC>=4 1/2, joint 0; hard (q1) joint 0
    # best:    q1 4/4, q2 5/5, q3 4/5 -> mean SA 13/3, mean PC 14/3, all >= 4, joint 1; hard (q1) joint 1
    F, L = {"main_category": "Force", "is_hard": 1}, {"main_category": "Light", "is_hard": 0}
    return make_batch(tmp_path / "b2", "videophy2", [
        line("q1", 0, F, "finished", "t1", [rnd(1, .5, .75, sa_rating=3, pc_rating=4),
                                            rnd(2, .75, .75, sa_rating=4, pc_rating=4)], best=2),
        line("q2", 1, L, "finished", "t1", [rnd(1, 1, .5, sa_rating=5, pc_rating=3),
                                            rnd(2, 1, 1, sa_rating=5, pc_rating=5)], best=2),
        line("q3", 2, L, "finished", "t1", [rnd(1, .5, .75, score=.3, sa_rating=None, pc_rating=4),
                                            rnd(2, .75, 1, sa_rating=4, pc_rating=5)], best=2),
    ])


def test_batch_videophy2_auto(v2_batch):
    s = M.summarize_batch(v2_batch, "auto")
    assert s["kind"] == "videophy2" and s["group_by"] == ["main_category"]
    first, best = s["rounds"]["first"], s["rounds"]["best"]
    assert first["n_excluded"] == 1 and best["n_excluded"] == 0 and "round 1: 1 finished" in s["warnings"][0]
    assert "different sets" in s["warnings"][1]
    assert first["overall"] == {"n": 2, "sa_mean": 4.0, "pc_mean": 3.5, "sa": 0.5, "pc": 0.5, "joint": 0.0}
    assert best["overall"] == {"n": 3, "sa_mean": approx(13 / 3), "pc_mean": approx(14 / 3), "sa": 1.0, "pc": 1.0,
                               "joint": 1.0}
    assert first["hard"]["joint"] == 0.0 and best["hard"] == {"n": 1, "sa_mean": 4.0, "pc_mean": 4.0, "sa": 1.0,
                                                              "pc": 1.0, "joint": 1.0}
    assert best["groups"]["main_category"]["Light"]["sa_mean"] == 4.5
    assert s["gain"]["overall"]["joint"] == 1.0 and s["gain"]["overall"]["sa_mean"] == approx(1 / 3)
    assert s["gain"]["hard"]["joint"] == 1.0
    assert s["gain"]["groups"]["main_category"]["Light"]["pc_mean"] == 5.0 - 3.0
    # the same batch read as videophy uses the rounds' sa/pc in [0, 1]
    assert M.summarize_batch(v2_batch, "videophy", round="best")["rounds"]["best"]["overall"]["joint"] == 1.0


def test_batch_errors(vp_batch, tmp_path):
    with pytest.raises(InputError, match=r"export .* --format phygenbench.*metrics auto"):
        M.summarize_batch(vp_batch, "phygenbench")
    with pytest.raises(InputError, match="Did you mean videophy"):
        M.summarize_batch(vp_batch, "videophi")
    with pytest.raises(InputError, match="--group-by complexity: no such column.*states_of_matter"):
        M.summarize_batch(vp_batch, group_by=["complexity"])
    with pytest.raises(InputError, match="--round last"):
        M.summarize_batch(vp_batch, round="last")
    empty = make_batch(tmp_path / "e", "videocon", [line("p4", 3, FF, "failed", "t")])
    with pytest.raises(InputError, match="no finished prompts yet"):
        M.summarize_batch(empty)


# ---------------------------------------------------------------- command line

def test_cli_json_file_and_batch(tmp_path, vp_batch):
    r = cli("videophy", write(tmp_path / "s.csv", VIDEOPHY_CSV), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["overall"] == {"n": 4, "sa": 0.75, "pc": 0.75, "joint": 0.5}
    r = cli("auto", vp_batch, "--json", "--round", "first")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rounds"]["first"]["overall"]["joint"] == approx(1 / 3)
    r = cli("phygenbench", write(tmp_path / "r.json", json.dumps(ITEMS)), "--json")
    assert json.loads(r.stdout)["average"] == approx(5 / 9)


def test_cli_tables(tmp_path, v2_batch):
    r = cli("videophy", write(tmp_path / "s.csv", VIDEOPHY_CSV))
    assert r.exit_code == 0 and "75.0" in r.stdout and "solid_solid" in r.stdout
    r = cli("auto", v2_batch)
    assert r.exit_code == 0, r.output
    assert "round 1" in r.stdout and "best round" in r.stdout and "gain" in r.stdout and "+100.0" in r.stdout
    r = cli("phygenbench", write(tmp_path / "r.json", json.dumps(ITEMS)))
    assert "Material" in r.stdout and "0.56" in r.stdout and "55.6" in r.stdout


def test_cli_errors(tmp_path, vp_batch):
    csv_file = write(tmp_path / "s.csv", VIDEOPHY_CSV)
    p = run("videophy3", csv_file)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "Did you mean videophy" in p.stderr
    p = run("phygenbench", vp_batch)
    text = " ".join(p.stderr.split())
    assert p.returncode == 2 and "PhyGenEval" in text and "--format phygenbench" in text and "metrics auto" in text
    p = run("videophy", write(tmp_path / "x.csv", "caption,score\na,1\n"), "--json")
    text = " ".join(p.stderr.split())
    assert p.returncode == 2 and p.stdout == "" and "columns present are: caption, score" in text
    for args, msg in [(("videophy", tmp_path / "none.csv"), "file not found"),
                      (("videophy", csv_file, "--round", "best"), "--round applies to a batch directory"),
                      (("videophy", csv_file, "--hard-column", "h"), "videophy2 only"),
                      (("auto", csv_file), "KIND auto works on a batch directory"),
                      (("videophy", tmp_path), "not a batch directory")]:
        r = cli(*args)
        assert isinstance(r.exception, InputError) and msg in str(r.exception), (args, r.exception)
