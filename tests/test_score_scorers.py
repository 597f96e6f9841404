"""``phyt2v score --scorer a,b,c``: four scorers (the smoke preset's tiny models, offline) on the shared mp4 files in
one pass, each scorer's columns side by side and the combination, the rank with ``loop.combine=rank``, and a
member's unparseable reply as the video's error."""

from __future__ import annotations

import csv
import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from phyt2v.cli.app import app  # noqa: E402

PROMPT = "An apple falls and bounces on the hard ground."
FOUR = "videocon,videophy2,videoscore2,vlm-judge"


def score(args: list) -> object:
    return CliRunner().invoke(app, ["score", *map(str, args)], env={"COLUMNS": "400"})


@pytest.mark.slow
def test_four_scorers_on_the_shared_videos_print_each_and_the_combination(sample_videos, tmp_path):
    out = tmp_path / "rows.csv"
    r = score([*sample_videos, "--prompt", PROMPT, "--scorer", FOUR, "--preset", "smoke", "--out", out])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    for label in FOUR.split(","):
        assert f"{label} SA" in text and f"{label} PC" in text
    n = len(sample_videos)
    assert f"scored {n}/{n} videos with videocon+videophy2+videoscore2+vlm-judge" in text
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(v) for v in sample_videos]
    for row in rows:
        assert row["error"] == ""
        members = {x: (float(row[f"{x}_sa"]), float(row[f"{x}_pc"])) for x in FOUR.split(",")}
        assert float(row["sa"]) == pytest.approx(sum(sa for sa, _ in members.values()) / 4)
        assert float(row["pc"]) == pytest.approx(sum(pc for _, pc in members.values()) / 4)
        assert float(row["score"]) == pytest.approx((float(row["sa"]) + float(row["pc"])) / 2)
        assert row["videophy2_sa_rating"] in "12345" and row["videoscore2_visual_rating"] in "12345"
        assert "rank" not in row


@pytest.mark.slow
def test_rank_column_orders_the_videos_of_one_prompt(sample_videos, tmp_path):
    out = tmp_path / "rows.jsonl"
    r = score([*sample_videos, "--prompt", PROMPT, "--scorer", "videoscore2,vlm-judge", "--preset", "smoke",
               "--set", "loop.combine=rank", "--out", out])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ranks = {}
    for x in ("videoscore2", "vlm-judge"):  # each scorer's own order: 1 for its best video
        order = sorted(rows, key=lambda row: -row[f"{x}_score"])
        ranks[x] = {row["path"]: order.index(row) + 1 for row in order}
    assert ranks["videoscore2"] != ranks["vlm-judge"]  # the two orders differ: the mean of ranks means something
    for row in rows:
        assert row["rank"] == pytest.approx((ranks["videoscore2"][row["path"]] + ranks["vlm-judge"][row["path"]]) / 2)


def test_a_members_unparseable_reply_is_the_videos_error_with_the_others_kept(sample_videos, tmp_path):
    out = tmp_path / "rows.jsonl"
    r = score([sample_videos[0], "--prompt", PROMPT, "--preset", "smoke", "--out", out, "--set",  # the config's list
               "scorer=[{backend: videoscore2, num_frames: 4, frame_size: 32, options: {max_new_tokens: 3}}, "
               "{backend: vlm-judge, num_frames: 4, frame_size: 32}]"])
    assert r.exit_code == 1
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["error"].startswith("videoscore2: unparseable reply") and row["sa"] is None and row["score"] is None
    assert row["videoscore2_error"].startswith("unparseable reply") and 0 <= row["vlm-judge_sa"] <= 1


def test_rule_needs_videophy2_among_the_scorers(sample_videos):
    from phyt2v.errors import InputError

    r = score([sample_videos[0], "--prompt", PROMPT, "--scorer", "videoscore2,vlm-judge", "--rule", "g", "--preset",
               "smoke"])
    assert isinstance(r.exception, InputError) and "got videoscore2+vlm-judge" in str(r.exception)
    r = score([sample_videos[0], "--prompt", PROMPT, "--scorer", "videocon,videocon", "--preset", "smoke"])
    assert "names videocon twice" in str(r.exception)
