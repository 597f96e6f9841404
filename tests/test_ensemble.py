"""Verifier ensembles: ``scorer`` as a list in the config (the hash of today's configs unchanged), the combination
rules (mean and rank, a case where they pick different candidates), the best-of-N candidate through the loop, one
memory-plan estimate and one quantization check per member, members loaded and swapped one by one, and each video
decoded once for all the members."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from doubles import FakeCaptioner, FakeGenerator, SeedScorer, physics_llm  # noqa: E402

from phyt2v.config import Config, hash_of, load_config  # noqa: E402
from phyt2v.config.ensemble import labels, members  # noqa: E402
from phyt2v.errors import ConfigError  # noqa: E402
from phyt2v.loop import ensemble as ens  # noqa: E402
from phyt2v.store.record import RoundScores  # noqa: E402

PROMPT = "a rubber ball is dropped onto a wooden floor"
LIST = "scorer=[{backend: videocon}, {backend: videophy2, weight: 0.5}, {backend: videoscore2}]"


# ---------------------------------------------------------------- the config

def test_a_scorer_list_is_an_ensemble_in_yaml_and_in_set(tmp_path):
    f = tmp_path / "ens.yaml"
    f.write_text("extends: smoke\nscorer:\n  - {backend: videocon}\n  - {backend: videophy2, weight: 0.5}\n"
                 "  - {backend: videoscore2}\n")
    by_file, by_set = load_config(file=f), load_config("smoke", overrides=[LIST])
    for cfg in (by_file, by_set):
        assert cfg.scorer.backend == "ensemble" and labels(cfg.scorer) == ["videocon", "videophy2", "videoscore2"]
        assert [m.weight for m in cfg.scorer.ensemble] == [1.0, 0.5, 1.0]
    assert by_file.hash() == by_set.hash()


def test_members_inherit_the_sections_settings_they_leave_unset():
    cfg = load_config("smoke", scorer={"ensemble": [{"backend": "videocon"}, {"backend": "videoscore2",
                                                                              "num_frames": 2, "device": "meta"}]})
    got = {label: (m.num_frames, m.frame_size, m.device) for label, m in members(cfg.scorer)}
    assert got == {"videocon": (4, 32, "cpu"), "videoscore2": (2, 32, "meta")}  # smoke's scorer: 4 frames, 32 px, cpu


def test_a_backend_listed_twice_gets_its_own_label():
    cfg = load_config(overrides=["scorer=[{backend: videocon}, {backend: videocon, model: tiny}]"])
    assert labels(cfg.scorer) == ["videocon", "videocon-2"]


@pytest.mark.parametrize("override,message", [
    ("scorer=[]", "scorer list is empty"),
    ("scorer.backend=ensemble", "at least two scorers"),
    ("scorer=[{backend: videocon}, {backend: ensemble, ensemble: [{backend: a}, {backend: b}]}]", "cannot itself"),
    ("scorer=[{backend: videocon}, {backend: videophy2, weight: 0}]", "weight"),
])
def test_bad_scorer_lists_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


# Hashes computed by the code before ensembles existed (main at 33d8ecb): run folders on disk carry them.
BEFORE = {(None, ()): "21d4af6519", ("smoke", ()): "48c294db6c", ("cogvideox-5b", ()): "4a83810e75",
          ("wan2.1-14b", ()): "f3a8c64771", ("local-24gb", ()): "828c6b4b09",
          ("smoke", ("scorer.backend=videophy2", "scorer.model=tiny")): "7f6ed9864f",
          ("cogvideox-5b", ("loop.seeds=4",)): "68ea7e17dc"}


@pytest.mark.parametrize("preset,sets", list(BEFORE))
def test_todays_single_scorer_configs_keep_their_hash(preset, sets):
    cfg = load_config(preset, overrides=list(sets))
    assert cfg.hash() == BEFORE[(preset, sets)]
    saved = cfg.effective()  # a config.json written before: no weight, ensemble or combine
    for section, key in (("scorer", "weight"), ("scorer", "ensemble"), ("loop", "combine")):
        del saved[section][key]
    assert hash_of(saved) == cfg.hash()
    one = json.dumps([saved["scorer"]])  # a one-scorer list is that scorer (YAML reads JSON)
    assert load_config(preset, overrides=[*sets, f"scorer={one}"]).hash() == cfg.hash()


def test_what_an_ensemble_computes_is_hashed_and_how_it_runs_is_not():
    base = load_config("smoke", overrides=[LIST])
    assert base.hash() != load_config("smoke").hash()
    assert load_config("smoke", overrides=[LIST, "loop.combine=rank"]).hash() != base.hash()
    reweighted = LIST.replace("weight: 0.5", "weight: 0.25")
    assert load_config("smoke", overrides=[reweighted]).hash() != base.hash()
    moved = LIST.replace("{backend: videoscore2}", "{backend: videoscore2, device: cuda:1, batch_size: 4}")
    other = load_config("smoke", overrides=[moved])
    assert other.hash() == base.hash() and other.runtime()["scorer"]["ensemble"][2]["device"] == "cuda:1"
    assert Config().identity()["scorer"]["ensemble"] == []  # every field hashed or runtime, once


# ---------------------------------------------------------------- the combination rules

def candidate(seed: int, **members_sa: float) -> SimpleNamespace:
    table = {name: {"sa": v, "pc": v, "weight": 1.0} for name, v in members_sa.items()}
    cfg = SimpleNamespace(sa_weight=0.5, pc_weight=0.5)
    extra = ens.with_member_scores(cfg, {"scorers": table})
    mean = sum(members_sa.values()) / len(members_sa)
    return SimpleNamespace(seed=seed, scores=RoundScores(sa=mean, pc=mean, score=mean, extra=extra))


def test_mean_and_rank_pick_different_candidates():
    # x spreads its scores wide; y and z bunch theirs but agree that seed 2 is best
    cands = [candidate(1, x=0.95, y=0.50, z=0.52), candidate(2, x=0.40, y=0.60, z=0.58),
             candidate(3, x=0.42, y=0.55, z=0.56)]
    assert ens.pick(cands, "mean").seed == 1  # x's wide margin outweighs the others
    assert ens.pick(cands, "rank").seed == 2  # two of three rank seed 2 first
    assert [c.scores.extra["rank"] for c in cands] == pytest.approx([7 / 3, 5 / 3, 2.0])


def test_ranks_share_ties_and_follow_the_weights():
    assert ens.ranks([0.2, 0.9, 0.2, 0.5]) == [3.5, 1.0, 3.5, 2.0]
    tables = [{"x": (0.9, 3.0), "y": (0.1, 1.0)}, {"x": (0.1, 3.0), "y": (0.9, 1.0)}]
    assert ens.mean_ranks(tables) == pytest.approx([(3 * 1 + 2) / 4, (3 * 2 + 1) / 4])


def test_a_rank_tie_goes_to_the_higher_mean_then_the_lower_seed():
    a, b = candidate(5, x=0.9, y=0.1), candidate(4, x=0.1, y=0.9)  # each first once: mean ranks tie, means tie
    assert ens.pick([a, b], "rank").seed == 4
    c = candidate(6, x=0.2, y=0.95)
    assert ens.pick([a, c], "rank").seed == 6  # ranks tie; 6's mean is higher


# ---------------------------------------------------------------- through the loop (best-of-N)

def ensemble_of(**members):
    from phyt2v.scorers.ensemble import EnsembleScorer

    return EnsembleScorer(members, {k: 1.0 for k in members})


def run(tmp_path, scorer, combine):
    from phyt2v.loop import Refiner

    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1, "seed": 1, "seeds": 3, "combine": combine},
                      out=str(tmp_path / combine))
    return Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                   scorer=scorer).refine(PROMPT)


@pytest.mark.parametrize("combine,chosen", [("mean", 1), ("rank", 2)])
def test_the_best_candidate_under_an_ensemble(tmp_path, combine, chosen):
    scorer = ensemble_of(x=SeedScorer({1: (0.95, 0.95), 2: (0.40, 0.40), 3: (0.42, 0.42)}),
                         y=SeedScorer({1: (0.50, 0.50), 2: (0.60, 0.60), 3: (0.55, 0.55)}),
                         z=SeedScorer({1: (0.52, 0.52), 2: (0.58, 0.58), 3: (0.56, 0.56)}))
    rnd = run(tmp_path, scorer, combine).rounds[0]
    assert rnd.seed == chosen and rnd.video == f"round-1/video-s{chosen}.mp4"
    for c in rnd.candidates:  # every scorer recorded per candidate, with its own score
        table = c.scores.extra["scorers"]
        assert set(table) == {"x", "y", "z"} and table["x"]["seen"] == f"video-s{c.seed}.mp4"
        assert all(r["score"] == pytest.approx(r["sa"]) and r["weight"] == 1.0 for r in table.values())
        assert c.scores.score == pytest.approx(sum(r["score"] for r in table.values()) / 3)
    assert rnd.scores == next(c for c in rnd.candidates if c.seed == chosen).scores


def test_a_member_without_a_value_fails_the_score_step_naming_it(tmp_path):
    from phyt2v.errors import Phyt2vError

    scorer = ensemble_of(x=SeedScorer({1: (0.9, 0.9), 2: (0.4, 0.4), 3: (0.4, 0.4)}),
                         y=SeedScorer({1: (math.nan, 0.5), 2: (0.6, 0.6), 3: (0.5, 0.5)}))
    with pytest.raises(Phyt2vError, match="no usable SA.*y: "):
        run(tmp_path, scorer, "mean")


@pytest.mark.slow
def test_refine_smoke_with_a_scorer_list_records_each_scorer_per_candidate(tmp_path):
    """The CLI, the smoke preset, three seeds and two real tiny scorers (``scorer.model`` unset: tiny, as the
    captioner): every candidate of every round records both, the memory plan places each alone."""
    from typer.testing import CliRunner

    from phyt2v.cli.app import app

    r = CliRunner().invoke(app, ["refine", PROMPT, "--preset", "smoke", "--seeds", "3", "--out", str(tmp_path),
                                 "--set", "scorer=[{backend: videocon}, {backend: videoscore2}]",
                                 "--set", "loop.max_rounds=1", "--set", "loop.min_rounds=1"])
    assert r.exit_code == 0, r.output
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["models"]["scorer"] == "ensemble:videocon:tiny + videoscore2:tiny"
    assert {"scorer:videocon", "scorer:videoscore2"} <= set(rec["memory_plan"]["roles"])
    [rnd] = rec["rounds"]
    assert [c["seed"] for c in rnd["candidates"]] == [42, 43, 44]
    for c in rnd["candidates"]:
        table = c["scores"]["extra"]["scorers"]
        assert set(table) == {"videocon", "videoscore2"}
        for row in table.values():
            assert 0 <= row["sa"] <= 1 and 0 <= row["pc"] <= 1 and 0 <= row["score"] <= 1
        assert table["videoscore2"]["sa_rating"] in range(1, 6) and table["videoscore2"]["reply"]
        assert c["scores"]["sa"] == pytest.approx((table["videocon"]["sa"] + table["videoscore2"]["sa"]) / 2)


# ---------------------------------------------------------------- memory plan, quantization, swap

def test_memory_plan_places_three_scorers_each_alone():
    from phyt2v.runtime import memplan, paramcount

    cfg = load_config(captioner={"model": "Qwen/Qwen2.5-VL-7B-Instruct"}, overrides=[LIST])
    plan = memplan.make_plan(cfg, 40 * memplan.GiB)
    scorers = {r: e for r, e in plan.roles.items() if r.startswith("scorer")}
    assert set(scorers) == {"scorer:videocon", "scorer:videophy2", "scorer:videoscore2"}
    assert scorers["scorer:videocon"].bytes == paramcount.PUBLISHED["videophysics/videocon_physics"]["model"] * 2
    assert scorers["scorer:videophy2"].bytes == paramcount.PUBLISHED["videophysics/videophy_2_auto"]["model"] * 2
    assert scorers["scorer:videoscore2"].bytes == paramcount.PUBLISHED["TIGER-Lab/VideoScore2"]["model"] * 2
    assert sum(e.bytes for e in scorers.values()) > 40 * memplan.GiB  # the three could not be resident together
    assert plan.placement == "swap" and plan.peak_bytes <= 40 * memplan.GiB  # one at a time, they fit
    assert plan.peak_bytes >= scorers["scorer:videoscore2"].bytes + scorers["scorer:videoscore2"].work_bytes
    assert "scorer:videoscore2" in plan.summary()
    with pytest.raises(ConfigError, match=r"scorer:videoscore2.*scorer\[videoscore2\]\.quantization=nf4"):
        memplan.make_plan(cfg, 18 * memplan.GiB)  # VideoScore2 alone (16.6 GB + work) does not fit; VideoCon would


def test_each_members_quantization_is_checked_before_any_load():
    from phyt2v.runtime import memplan

    cfg = load_config("smoke", overrides=["scorer=[{backend: videocon, quantization: nf4}, {backend: videoscore2}]"])
    with pytest.raises(ConfigError, match=r"scorer\[videocon\]\.quantization=nf4 needs a CUDA GPU"):
        memplan.run_plan(cfg, None)


def test_members_load_one_by_one_and_swap_as_their_own_roles():
    from phyt2v.runtime.swap import Swapper

    moves: list[tuple[str, str]] = []
    names: dict[int, str] = {}
    swapper = Swapper("cpu", park="meta-park", move=lambda m, where: moves.append((names.get(id(m), "?"), where)))
    built: list[tuple[str, int]] = []
    real_park = swapper.park_all

    def park_all():
        built.append(("park", len(swapper.roles)))
        real_park()

    swapper.park_all = park_all
    cfg = load_config("smoke", overrides=["scorer=[{backend: videocon, num_frames: 4}, "
                                          "{backend: videoscore2, num_frames: 4, frame_size: 32}]"])
    scorer = ens.load_scorer(cfg, swapper)
    assert built == [("park", 0), ("park", 1)]  # the GPU emptied before each member loads
    assert set(swapper.roles) == {"scorer:videocon", "scorer:videoscore2"}
    for role, mods in swapper.roles.items():
        names.update({id(m): role for m in mods})
    moves.clear()
    video = sorted((Path(__file__).resolve().parents[2] / "shared" / "videos").glob("*.mp4"))
    if not video:
        pytest.skip("no sample videos in ../shared/videos")
    s = scorer.score(video[0], PROMPT)
    assert set(s.extra["scorers"]) == {"videocon", "videoscore2"} and not math.isnan(s.sa)
    assert ("scorer:videocon", "cpu") in moves and ("scorer:videoscore2", "cpu") in moves
    assert ("scorer:videocon", "meta-park") in moves  # parked while VideoScore2 ran


def test_each_video_is_decoded_once_per_frame_size_for_all_members(sample_videos, monkeypatch):
    from phyt2v import registry
    from phyt2v.store import video_io

    decoded: list[tuple[str, object]] = []
    real = video_io._decode

    def counting(path, size):
        decoded.append((Path(path).name, size))
        return real(path, size)

    monkeypatch.setattr(video_io, "_decode", counting)
    cfg = load_config("smoke", overrides=["scorer=[{backend: videocon}, {backend: videophy2}, "
                                          "{backend: videoscore2}, {backend: vlm-judge}]"])
    scorer = registry.build("scorer", cfg, cache=False)
    vids = sample_videos[:2]
    results = scorer.score_many([(v, PROMPT) for v in vids], batch_size=1)
    assert [r.error for r in results] == [None, None]
    # mPLUG-Owl's two scorers share the 224 x 224 decode; VideoScore2 and vlm-judge the full-size one
    assert Counter(decoded) == Counter([(v.name, (224, 224)) for v in vids] + [(v.name, None) for v in vids])
    for r in results:
        table = r.scores.extra["scorers"]
        assert r.scores.sa == pytest.approx(sum(t["sa"] for t in table.values()) / 4)


def test_the_ensembles_sa_and_pc_are_the_weighted_means_and_a_failed_member_is_named():
    from phyt2v.roles import Scores
    from phyt2v.scorers.ensemble import EnsembleScorer

    e = EnsembleScorer({"a": SeedScorer({}), "b": SeedScorer({})}, {"a": 1.0, "b": 3.0})
    s = e.combine({"a": Scores(0.2, 0.8, {"sa_rating": 2}), "b": Scores(0.6, 0.4)})
    assert (s.sa, s.pc) == pytest.approx(((0.2 + 3 * 0.6) / 4, (0.8 + 3 * 0.4) / 4))
    assert s.extra["scorers"]["a"] == {"weight": 1.0, "sa": 0.2, "pc": 0.8, "sa_rating": 2}
    assert "unparseable" not in s.extra
    bad = e.combine({"a": Scores(0.2, 0.8), "b": Scores(math.nan, 0.4, {"unparseable": ["sa"]})})
    assert math.isnan(bad.sa) and math.isnan(bad.pc) and bad.extra["unparseable"] == ["b: unparseable reply (sa)"]
    assert bad.extra["scorers"]["a"]["sa"] == 0.2  # the others' values are kept
