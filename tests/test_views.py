"""Metrics, exports and the report of best-of-N seeds (loop.seeds) and draft rounds (loop.draft).

The batch is built as the loop leaves it: RunRecord/RoundRecord/Candidate/FinalRender saved with
record.RunStore, real tiny mp4s written with video_io.write_video, and result lines from batch.result_line."""

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from test_report import browser, open_page  # noqa: F401  (the headless Chromium fixture)

from phyt2v.batch import Shard, result_line
from phyt2v.batch import folder as batchdir
from phyt2v.batch.sources import PromptItem
from phyt2v.store.record import Candidate, FinalRender, RoundRecord, RoundScores, RunRecord, RunStore
from phyt2v.store.video_io import write_video
from phyt2v.views import metrics, report
from phyt2v.views.export import export


def scores(sa, pc):
    return RoundScores(sa=sa, pc=pc, score=round((sa + pc) / 2, 6))


def video(run_dir: Path, rel: str, shade: float) -> str:
    write_video([np.full((16, 16, 3), shade, dtype=np.float32)] * 4, run_dir / rel, fps=8)
    return rel


# p0 (drafts, 3 seeds a round). Order by seed differs from order by score in both rounds:
#   round 1: seed 42 (0.2, 0.4) 0.3, seed 43 (0.7, 0.5) 0.6, seed 44 (0.5, 0.4) 0.45 -> ranked 43, 44, 42
#   round 2: seed 42 (0.9, 0.7) 0.8, seed 43 (0.2, 0.2) 0.2, seed 44 (0.6, 0.4) 0.5  -> ranked 42, 44, 43
#   best draft round 2 (PC 0.7 -> PC=1); its final render (0.6, 0.3): SA=1, PC=0. Metrics must use the final.
# p1 (an old line without seed/draft/candidates/final): round 1 (0.3, 0.6), best round 2 (0.8, 0.9).
SEEDS = {1: {42: (0.2, 0.4), 43: (0.7, 0.5), 44: (0.5, 0.4)}, 2: {42: (0.9, 0.7), 43: (0.2, 0.2), 44: (0.6, 0.4)}}
OLD_KEYS = ("seed", "draft", "candidates")


def draft_run(run_dir: Path) -> RunRecord:
    rounds = []
    for k, cands in SEEDS.items():
        cs = [Candidate(seed=s, video=video(run_dir, f"round-{k}/seed-{s}.mp4", 0.1 * (s - 40)), scores=scores(*v))
              for s, v in cands.items()]
        best = max(cs, key=lambda c: c.scores.score)
        rounds.append(RoundRecord(index=k, prompt=f"draft prompt {k}", video=best.video, seed=best.seed,
                                  candidates=cs, draft=True, caption=f"caption {k}", scores=best.scores))
    final = FinalRender(round=2, prompt="draft prompt 2", seed=42, video=video(run_dir, "final/video.mp4", 0.9),
                        caption="final caption", scores=scores(0.6, 0.3))
    return RunRecord(run_id=run_dir.name, prompt="a ball falls", status="finished", config_hash="h", rounds=rounds,
                     best_round=2, final=final, stop_reason="max_rounds")


def plain_run(run_dir: Path) -> RunRecord:
    rounds = [RoundRecord(index=k, prompt=f"plain prompt {k}", video=video(run_dir, f"round-{k}/video.mp4", 0.3 * k),
                          caption="c", scores=scores(*v)) for k, v in ((1, (0.3, 0.6)), (2, (0.8, 0.9)))]
    return RunRecord(run_id=run_dir.name, prompt="water pours", status="finished", config_hash="h", rounds=rounds,
                     best_round=2, stop_reason="max_rounds")


@pytest.fixture
def batch_dir(tmp_path):
    d = tmp_path / "videophy-test-h"
    d.mkdir()
    (d / "batch.json").write_text(json.dumps({"schema_version": 1, "source": {"name": "t", "kind": "builtin"},
                                              "config_hash": "h", "config": {}, "selected": 2}))
    lines = []
    for i, make in enumerate((draft_run, plain_run)):
        item = PromptItem(index=i, id=f"p{i}", prompt=["a ball falls", "water pours"][i],
                          meta={"states_of_matter": "solid"}, line=None)
        run_dir = d / "runs" / f"p{i}-run"
        rec = make(run_dir)
        RunStore(run_dir).save(rec)
        ln = result_line(item, rec, run_dir, d, status="finished", error=None, wall_s=1.0, config_hash="h",
                         shard=Shard())
        if i == 1:  # written before seeds and drafts existed
            ln.pop("final")
            for r in ln["rounds"]:
                for key in OLD_KEYS:
                    r.pop(key)
        lines.append(ln)
    (d / "prompts.jsonl").write_text("".join(json.dumps({k: ln[k] for k in ("id", "index", "prompt", "meta")}) + "\n"
                                             for ln in lines))
    (d / "results.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    return d


def lines_of(d):
    return list(batchdir.read_results(d).values())


def test_round_of_picks_the_final_render(batch_dir):
    drafted, old = lines_of(batch_dir)
    best = batchdir.round_of(drafted, "best")
    assert best["final"] is True and best["index"] == 2 and best["score"] == 0.45 and best["pc"] == 0.3
    assert best["video"] == "runs/p0-run/final/video.mp4" and batchdir.render_of(best) == "final"
    first, second = batchdir.round_of(drafted, "first"), batchdir.round_of(drafted, 2)
    assert first["draft"] and first["seed"] == 43 and batchdir.render_of(first) == "draft"
    assert second["pc"] == 0.7 and batchdir.render_of(second) == "draft"
    assert batchdir.round_of(old, "best")["pc"] == 0.9 and batchdir.render_of(batchdir.round_of(old, "best")) == "full"
    unscored = {**drafted, "final": {**drafted["final"], "score": None}}  # a final never scored: the best draft
    assert batchdir.round_of(unscored, "best")["index"] == 2 and batchdir.round_of(unscored, "best").get("draft")


def test_metrics_use_the_final_and_say_so(batch_dir):
    s = metrics.summarize_batch(batch_dir)
    first, best = s["rounds"]["first"], s["rounds"]["best"]
    # best: p0's final (0.6, 0.3) -> SA1 PC0; p1 round 2 -> 1/1. The best draft round (PC 0.7) would give PC 1.0.
    assert best["overall"] == {"n": 2, "sa": 1.0, "pc": 0.5, "joint": 0.5}
    assert best["renders"] == {"full": 1, "draft": 0, "final": 1} and "1 of 2 final renders" in best["label"]
    assert first["renders"] == {"full": 1, "draft": 1, "final": 0} and "draft" in first["label"]
    assert s["n_final"] == 1
    assert any("1 of 2 finished prompt(s) have a final render" in w for w in s["warnings"])
    assert any("not like for like" in w for w in s["warnings"])
    one = metrics.summarize_batch(batch_dir, round="2")["rounds"]["2"]
    assert one["overall"]["pc"] == 1.0 and one["renders"]["draft"] == 1


def test_preference_export_groups_seeds_ranked_by_score(batch_dir, tmp_path):
    res = export(batch_dir, "preference", out=tmp_path / "pref.jsonl")
    groups = [json.loads(x) for x in (tmp_path / "pref.jsonl").read_text().splitlines()]
    assert res.exported == 2 and res.missing == []
    assert [(g["id"], g["group"], g.get("round")) for g in groups] == [
        ("p0", "rounds", None), ("p0", "seeds", 1), ("p0", "seeds", 2), ("p1", "rounds", None)]
    run0 = (batch_dir / "runs" / "p0-run").resolve()
    for g, order in ((groups[1], [43, 44, 42]), (groups[2], [42, 44, 43])):
        assert [c["seed"] for c in g["candidates"]] == order and [c["rank"] for c in g["candidates"]] == [1, 2, 3]
        assert g["chosen"] == str(run0 / f"round-{g['round']}/seed-{order[0]}.mp4")
        assert g["rejected"] == str(run0 / f"round-{g['round']}/seed-{order[-1]}.mp4") and g["draft"] is True
    assert groups[1]["score_gap"] == pytest.approx(0.6 - 0.3)
    rounds = groups[0]
    assert [c["round"] for c in rounds["candidates"]] == [2, 1] and all(c["draft"] for c in rounds["candidates"])
    assert not groups[3]["draft"] and [c["round"] for c in groups[3]["candidates"]] == [2, 1]


def test_other_exports_use_the_final_video(batch_dir, tmp_path):
    res = export(batch_dir, "videophy-eval", out=tmp_path / "e.csv")
    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert res.drafts == 0 and rows[0]["videopath"] == str((batch_dir / "runs/p0-run/final/video.mp4").resolve())
    res = export(batch_dir, "videophy-eval", out=tmp_path / "f.csv", which="first")
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert res.drafts == 1 and rows[0]["videopath"].endswith("p0-run/round-1/seed-43.mp4")


class Page(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.videos, self.classes = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "video":
            self.videos.append(a["src"])
        self.classes.append(a.get("class") or "")


def check_report(page: Path) -> tuple[str, Page]:
    text = page.read_text(encoding="utf-8")
    pg = Page(text)
    assert all((page.parent / unquote(v)).is_file() for v in pg.videos)
    return text, pg


def test_run_report_shows_candidates_drafts_and_final(batch_dir):
    run_dir = batch_dir / "runs" / "p0-run"
    text, pg = check_report(report.write_report(run_dir))
    assert pg.classes.count("candidate") + pg.classes.count("candidate chosen") == 6
    assert pg.classes.count("candidate chosen") == 2 and text.count('<span class="badge">chosen</span>') == 2
    assert text.count('<span class="badge draft">draft</span>') == 2
    assert "Result: final render of round 2" in text and "final caption" in text
    assert "round-1/seed-43.mp4" in pg.videos and "final/video.mp4" in pg.videos
    chosen = text.split('class="candidate chosen"')[1].split("</div></div>")[0]
    assert "seed 43" in chosen  # round 1's pick is seed 43, not the first seed
    assert "SA 0.600 · PC 0.300" in text  # the final's scores


def test_batch_report_uses_the_final_and_rebuilds_lines(batch_dir):
    text, pg = check_report(report.write_report(batch_dir))
    assert "(draft → final)" in text and "0.500 → 0.300" in text  # p0 PC: draft round 1 -> final
    assert "round 1 (draft renders)" in text or "round 1 (1 of 2 draft renders)" in text
    assert "Result: final render of round 2" in text and pg.classes.count("candidate chosen") == 2
    # without run.json the page is rebuilt from the result lines: the same candidates, drafts and final
    for i in (0, 1):
        (batch_dir / "runs" / f"p{i}-run" / "run.json").unlink()
    text2, pg2 = check_report(report.write_report(batch_dir))
    assert sorted(pg2.videos) == sorted(pg.videos)
    assert pg2.classes.count("candidate chosen") == 2 and text2.count('<span class="badge draft">draft</span>') == 2
    assert "Result: final render of round 2" in text2 and "final caption" in text2
    rec = report.record_from_line(lines_of(batch_dir)[1], batch_dir / "runs/p1-run", batch_dir)  # an old line
    assert rec.final is None and [r.candidates for r in rec.rounds] == [[], []] and rec.rounds[1].scores.pc == 0.9


def test_cli_says_which_scores_are_drafts(batch_dir, tmp_path):
    from typer.testing import CliRunner

    from phyt2v.cli import app

    r = CliRunner().invoke(app, ["metrics", "auto", str(batch_dir)])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "gain (final render - draft round 1)" in out and "best round (1 of 2 final renders)" in out
    assert "round 1 (1 of 2 draft renders)" in out and "not like for like" in out
    r = CliRunner().invoke(app, ["export", str(batch_dir), "--format", "vbench", "--round", "first",
                                 "--out", str(tmp_path / "vb")])
    assert r.exit_code == 0, r.output
    assert "1 exported video(s) are draft renders" in " ".join(r.output.split())


def test_report_with_candidates_in_chromium(batch_dir, browser):
    """Every candidate and final video loads and plays in headless Chromium, with no script error."""
    state = open_page(browser, report.write_report(batch_dir / "runs" / "p0-run"), "seeds.png")
    assert len(state["videos"]) == 2 + 6 + 1  # the rounds, their 6 seed videos, the final
