"""Batch scoring: per-video errors never stop the others, batched model calls, frame decoding in a
worker thread, and the ``phyt2v score`` command (table, CSV/JSONL, exit code)."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")

from phyt2v.roles import Scores  # noqa: E402
from phyt2v.scorers.many import ScoreItem, score_videos  # noqa: E402
from phyt2v.scorers.videocon import VideoConScorer  # noqa: E402


@pytest.fixture(scope="module")
def scorer(tiny_owl) -> VideoConScorer:
    return VideoConScorer(str(tiny_owl), device="cpu", dtype="float32", num_frames=8)


@pytest.fixture(scope="module")
def vids(tmp_path_factory) -> dict[str, Path]:
    import imageio.v2 as iio

    from phyt2v.store.video_io import write_video

    d = tmp_path_factory.mktemp("vids")
    rng = np.random.default_rng(2)
    out = {f"ok{i}": write_video([rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(10 + i)],
                                 d / f"ok{i}.mp4", fps=8) for i in range(4)}
    gray = d / "gray_odd.mp4"  # grayscale content, odd size 15x17
    with iio.get_writer(str(gray), format="ffmpeg", fps=8, codec="libx264", macro_block_size=1,
                        pixelformat="gray") as w:
        for _ in range(5):
            w.append_data(rng.integers(0, 255, (17, 15), dtype=np.uint8))
    out["gray"] = gray
    (d / "empty.mp4").write_bytes(b"")
    (d / "corrupt.mp4").write_bytes(os.urandom(2048))
    out["empty"], out["corrupt"], out["missing"] = d / "empty.mp4", d / "corrupt.mp4", d / "missing.mp4"
    return out


def test_bad_inputs_fail_alone(scorer, vids):
    items = [(vids["ok0"], "Noise."), (vids["missing"], "Noise."), (vids["empty"], "Noise."),
             (vids["corrupt"], "Noise."), (vids["ok1"], "   "), (vids["gray"], "Gray noise."),
             (vids["ok2"], "Noise again.")]
    res = score_videos(scorer, items, batch_size=2)
    assert [r.video for r in res] == [v for v, _ in items]
    ok = {r.video.name: r for r in res if r.ok}
    assert set(ok) == {"ok0.mp4", "gray_odd.mp4", "ok2.mp4"}
    errors = {r.video.name: r.error for r in res if not r.ok}
    assert "video not found" in errors["missing.mp4"]
    assert "0 bytes" in errors["empty.mp4"]
    assert "corrupt.mp4" in errors["corrupt.mp4"]
    assert "empty prompt" in errors["ok1.mp4"]
    assert ok["gray_odd.mp4"].scores.extra["video_frames"] == 5
    row = res[1].row()
    assert row["sa"] is None and row["error"] == errors["missing.mp4"]


def test_batches_and_decoding_thread(scorer, vids):
    threads, sizes = set(), []
    real_prepare, real_score = scorer.prepare, scorer.score_prepared

    def prepare(*a, **k):
        threads.add(threading.current_thread().name)
        return real_prepare(*a, **k)

    def score_prepared(batch):
        sizes.append(len(batch))
        return real_score(batch)

    scorer.prepare, scorer.score_prepared = prepare, score_prepared
    try:
        items = [ScoreItem(vids[f"ok{i}"], f"Noise {i}.") for i in range(4)] + [ScoreItem(vids["ok0"], "Again.")]
        seen = []
        res = scorer.score_many(items, batch_size=2, on_result=lambda i, r: seen.append(i))
    finally:
        del scorer.prepare, scorer.score_prepared
    assert threads == {"phyt2v-decode"}
    assert sizes == [2, 2, 1]
    assert sorted(seen) == [0, 1, 2, 3, 4] and all(r.ok for r in res)
    single = scorer.score(vids["ok3"], "Noise 3.")
    assert res[3].scores.sa == pytest.approx(single.sa, abs=1e-5)


def test_a_failing_batch_is_retried_video_by_video(scorer, vids):
    real = scorer.score_prepared

    def flaky(batch):  # fault injection: the model fails on one video
        if any(p.video.name == "ok1.mp4" for p in batch):
            raise RuntimeError("CUDA out of memory (injected)")
        return real(batch)

    scorer.score_prepared = flaky
    try:
        res = score_videos(scorer, [(vids[f"ok{i}"], "Noise.") for i in range(3)], batch_size=3)
    finally:
        del scorer.score_prepared
    assert [r.ok for r in res] == [True, False, True]
    assert res[1].error == "RuntimeError: CUDA out of memory (injected)"


def test_plain_scorers_are_called_one_by_one():
    class Judge:  # a test double of a scorer without the two-phase API
        backend, model_id = "double", "double"

        def score(self, video, prompt):
            if "bad" in str(video):
                raise ValueError("cannot judge")
            return Scores(sa=0.25, pc=0.75)

    res = score_videos(Judge(), [("a.mp4", "x"), ("bad.mp4", "x"), ("c.mp4", "x")], batch_size=4)
    assert [r.ok for r in res] == [True, False, True]
    assert res[1].error == "ValueError: cannot judge" and res[2].scores.pc == 0.75


# ------------------------------------------------------------------ the command

@pytest.fixture()
def run_cli():
    import typer
    from typer.testing import CliRunner

    from phyt2v.cli.score import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register(app)
    return lambda args: CliRunner().invoke(app, [str(a) for a in args])


def test_score_command_writes_csv_and_reports_failures(run_cli, tiny_owl, vids, tmp_path):
    out = tmp_path / "scores.csv"
    r = run_cli(["score", vids["ok0"], vids["missing"], vids["ok2"], "--prompt", "Noise.", "--scorer", "videocon",
                 "--out", out, "--batch-size", "2", "--set", f"scorer.model={tiny_owl}", "--set", "scorer.device=cpu",
                 "--set", "scorer.num_frames=8"])
    assert r.exit_code == 1, r.output
    rows = list(csv.DictReader(out.open()))
    assert [Path(x["path"]).name for x in rows if not x["error"]] == ["ok0.mp4", "ok2.mp4"]
    assert {"path", "prompt", "sa", "pc", "sa_pass", "pc_pass", "truncated", "error"} == set(rows[0])
    assert 0.0 <= float(next(x for x in rows if not x["error"])["sa"]) <= 1.0
    assert "scored 2/3 videos with videocon" in r.output and "video not found" in r.output


def test_score_command_reads_a_prompts_file_and_asks_rules(run_cli, tiny_owl, vids, tmp_path):
    table = tmp_path / "prompts.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["videopath", "caption", "rule"])
        w.writerow([vids["ok0"], "Noise.", "Noise stays noise."])
        w.writerow([vids["ok1"], "More noise.", ""])
    out = tmp_path / "scores.jsonl"
    r = run_cli(["score", "--prompts", table, "--scorer", "videophy2", "--rule", "Mass is conserved.", "--out", out,
                 "--set", f"scorer.model={tiny_owl}", "--set", "scorer.num_frames=4", "--set", "scorer.options={max_new_tokens: 3}"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["rule"] for x in rows] == ["Noise stays noise.", "Mass is conserved."]
    assert all("sa_rating" in x and "rule_rating" in x and x["error"] is None for x in rows)


@pytest.mark.parametrize("args,message", [
    (["--prompt", "x", "--prompts", "p.txt"], "either --prompt or --prompts"),
    ([], "pass --prompt TEXT"),
    (["--prompt", "x", "--rule", "gravity"], "use --scorer videophy2"),
])
def test_score_command_rejects_bad_arguments(run_cli, vids, args, message):
    from phyt2v.errors import InputError

    r = run_cli(["score", vids["ok0"], *args])
    assert isinstance(r.exception, InputError) and message in str(r.exception)


def test_truncated_video_is_an_error_row(run_cli, tiny_owl, vids, truncated_video, tmp_path):
    out = tmp_path / "scores.jsonl"
    r = run_cli(["score", truncated_video, vids["ok0"], "--prompt", "An apple falls.", "--scorer", "videocon",
                 "--out", out, "--set", f"scorer.model={tiny_owl}", "--set", "scorer.device=cpu",
                 "--set", "scorer.num_frames=8"])
    assert r.exit_code == 1, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    bad = next(x for x in rows if x["path"] == str(truncated_video))
    assert bad["sa"] is None and "truncated or corrupt" in bad["error"] and str(truncated_video) in bad["error"]
    assert "20 of the 32 frames" in bad["error"]
    assert [x["error"] for x in rows if x["path"] == str(vids["ok0"])] == [None]


def test_a_decode_error_part_way_is_an_error_row(scorer, vids, monkeypatch):
    import imageio.v2 as iio

    real = iio.get_reader

    class Failing:  # fault injection: ffmpeg stops with an error after three frames
        def __init__(self, *a, **k):
            self.inner = real(*a, **k)

        def get_meta_data(self):
            return self.inner.get_meta_data()

        def __iter__(self):
            for i, frame in enumerate(self.inner):
                if i == 3:
                    raise OSError("[h264] Invalid NAL unit size")
                yield frame

        def close(self):
            self.inner.close()

    monkeypatch.setattr(iio, "get_reader", Failing)
    res = score_videos(scorer, [(vids["ok3"], "Noise.")])
    assert not res[0].ok and "truncated or corrupt: decoding failed after 3 frames" in res[0].error
    assert "Invalid NAL unit size" in res[0].error and str(vids["ok3"]) in res[0].error
