"""Metrics, exports and the report of batches run with best-of-N seeds and draft rounds: the final render
is the prompt's result, seed groups are exported ranked, the report shows candidates, drafts and the final.
The batches are made by the real loop and batch code on the loop's test doubles (real mp4 files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from doubles import FakeCaptioner, physics_llm

from phyt2v.batch import Batch
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.roles import GeneratedVideo, Scores
from phyt2v.store.video_io import write_video
from phyt2v.views import report
from phyt2v.views.export import export
from phyt2v.views.metrics import summarize_batch

PROMPTS = ["a rubber ball bounces on a wooden floor", "a glass of water tips over"]


class StepsGenerator:
    """Writes a real mp4 whose pixels depend on the prompt, the seed and the steps (a draft differs)."""

    backend, model_id, max_prompt_tokens, steps = "fake", "fake-gen", 40, 40

    def count_tokens(self, prompt):
        return len(prompt.split())

    def generate(self, prompt, *, seed, out_path, on_step=None, overrides=None):
        steps = (overrides or {}).get("steps", self.steps)
        h = int(hashlib.sha256(f"{prompt}|{seed}|{steps}".encode()).hexdigest()[:8], 16)
        frames = [np.full((16, 16, 3), (h >> (8 * i)) % 256, dtype=np.uint8) for i in range(3)]
        write_video(frames, out_path, fps=8)
        return GeneratedVideo(Path(out_path), 3, 8, 16, 16, seed, self.count_tokens(prompt), steps=steps)


class PixelScorer:
    """Score from the first pixel value; seed 43 gets a bonus so that by-seed and by-score orders differ."""

    backend, model_id = "fake", "fake-judge"

    def score(self, video, prompt):
        from phyt2v.store.video_io import read_frames

        frames, _ = read_frames(video)
        v = float(frames[0][0, 0, 0]) / 255 * 0.5 + (0.4 if Path(video).stem.endswith("-s43") else 0.0)
        return Scores(sa=min(v, 1.0), pc=min(v, 1.0))


def run_batch(tmp_path: Path, **loop) -> Path:
    src = tmp_path / "p.txt"
    src.write_text("\n".join(PROMPTS) + "\n")
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2, **loop})
    ref = Refiner(cfg, llm=physics_llm(), generator=StepsGenerator(), captioner=FakeCaptioner(), scorer=PixelScorer())
    b = Batch(load_source(str(src)), cfg, out=tmp_path / "out", refiner=ref)
    assert b.run().merged
    return b.dir


def lines(batch: Path) -> list[dict]:
    return list(batchdir.read_results(batch).values())


def test_metrics_and_round_of_use_the_final_render(tmp_path):
    batch = run_batch(tmp_path, draft={"enabled": True})
    for line in lines(batch):
        best = batchdir.round_of(line, "best")
        drafted = next(r for r in line["rounds"] if r["index"] == line["best_round"])
        assert best["final"] is True and best["score"] == line["final"]["score"]
        assert best["score"] != drafted["score"]  # a full render scores differently from its draft
        assert batchdir.round_of(line, "first")["draft"] is True
    summary = summarize_batch(batch, round="best")
    want = [line["final"]["sa"] for line in lines(batch)]
    assert summary["rounds"]["best"]["overall"]["n"] == 2 and summary["n_final"] == 2
    sa_rate = sum(v >= 0.5 for v in want) / len(want) * 100
    assert summary["rounds"]["best"]["overall"]["sa"] == sa_rate
    assert any("draft" in w for w in summarize_batch(batch)["warnings"])


def test_preference_export_groups_seeds_ranked_by_score(tmp_path):
    batch = run_batch(tmp_path, seeds=3)
    res = export(batch, "preference", out=tmp_path / "pref.jsonl")
    groups = [json.loads(x) for x in (tmp_path / "pref.jsonl").read_text().splitlines()]
    seeds = [g for g in groups if g["group"] == "seeds"]
    assert len(seeds) == 4 and len(groups) == 6  # 2 prompts x (2 rounds of seeds + 1 of rounds)
    assert res.exported == 2  # prompts
    for g in seeds:
        scores = [c["score"] for c in g["candidates"]]
        assert scores == sorted(scores, reverse=True) and [c["rank"] for c in g["candidates"]] == [1, 2, 3]
        assert g["candidates"][0]["seed"] == 43 and g["chosen"].endswith("video-s43.mp4")
        assert g["rejected"] == g["candidates"][-1]["video"] and Path(g["chosen"]).is_file()
    rounds = [g for g in groups if g["group"] == "rounds"]
    assert [len(g["candidates"]) for g in rounds] == [2, 2]


def test_report_shows_candidates_drafts_and_the_final(tmp_path):
    batch = run_batch(tmp_path, seeds=2, draft={"enabled": True})
    page = report.write_report(batch).read_text()
    assert "Result: final render of round" in page and page.count('class="badge draft"') == 4
    assert page.count("2 seeds (best-of-N)") == 4 and "seed 43 <span class=\"badge\">chosen</span>" in page
    # rebuilt from the result lines alone (run.json lost): the same views
    run_dir = next(batch.glob("runs/*"))
    line = lines(batch)[0]
    rec = report.record_from_line(line, run_dir, batch)
    assert rec.final is not None and rec.final.scores.score == line["final"]["score"]
    assert [c.seed for c in rec.rounds[0].candidates] == [42, 43] and rec.rounds[0].draft
