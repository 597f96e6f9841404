"""Best-of-N seeds and draft rounds in the loop, on the loop's test doubles (pure loop logic; the real tiny
diffusers path is in test_e2e_smoke.py / the generator tests): candidates recorded and scored, the best
carried into captioning and mismatch, drafts marked and rendered cheaper, the final render at full settings,
resume after a kill at each new step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from doubles import FakeCaptioner, FakeGenerator, physics_llm

from phyt2v.batch import Shard, result_line
from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.loop import Refiner
from phyt2v.roles import Scores
from phyt2v.store.record import RunStore

PROMPT = "a rubber ball is dropped onto a wooden floor"


class SeedScorer:
    """Scores depend on the video's seed (read from its file name) and the prompt: a stated preference."""

    backend, model_id = "fake", "fake-judge"

    def __init__(self, prefer: dict[int, float] | None = None):
        self.prefer = prefer or {}
        self.videos: list[str] = []

    def score(self, video, prompt):
        self.videos.append(Path(video).name)
        name = Path(video).stem
        seed = int(name.split("-s")[-1]) if "-s" in name else None
        h = int(hashlib.sha256(Path(video).read_bytes()).hexdigest()[:6], 16) % 100 / 1000  # < 0.1
        v = self.prefer.get(seed, 0.3) + h
        return Scores(sa=v, pc=v)


class DraftGenerator(FakeGenerator):
    """FakeGenerator that takes per-call overrides (as the diffusers backends do) and says its steps."""

    steps = 40

    def __init__(self):
        super().__init__()
        self.overrides: list[dict | None] = []

    def generate(self, prompt, *, seed, out_path, on_step=None, overrides=None):
        self.overrides.append(overrides)
        v = super().generate(prompt, seed=seed, out_path=out_path, on_step=on_step)
        v.steps = (overrides or {}).get("steps", self.steps)
        return v


def make(tmp_path, *, gen=None, scorer=None, rounds=3, **loop):
    cfg = load_config(loop={"max_rounds": rounds, "min_rounds": rounds, **loop}, out=str(tmp_path))
    parts = dict(llm=physics_llm(), generator=gen or FakeGenerator(), captioner=FakeCaptioner(),
                 scorer=scorer or SeedScorer())
    return Refiner(cfg, **parts), parts


def test_best_of_n_keeps_every_seed_and_carries_the_best(tmp_path):
    scorer = SeedScorer(prefer={43: 0.8})  # the middle seed wins, not the first
    ref, parts = make(tmp_path, scorer=scorer, rounds=2, seeds=3, seed=42)
    res = ref.refine(PROMPT)
    rnd = res.rounds[0]
    assert [c.seed for c in rnd.candidates] == [42, 43, 44]
    assert all((res.run_dir / c.video).is_file() and c.scores is not None for c in rnd.candidates)
    assert len({(res.run_dir / c.video).read_bytes() for c in rnd.candidates}) == 3
    assert rnd.seed == 43 and rnd.video == "round-1/video-s43.mp4"
    assert rnd.scores == max((c.scores for c in rnd.candidates), key=lambda s: s.score)
    # only the best video is captioned, and its caption is what the mismatch step read
    assert [p.name for p in parts["captioner"].calls] == ["video-s43.mp4", "video-s43.mp4"]
    assert rnd.done == ["generate", "score", "caption", "mismatch", "refine"]
    assert len(scorer.videos) == 6  # 3 seeds x 2 rounds
    line = result_line(_Item(), res.record, res.run_dir, tmp_path, status="finished", error=None, wall_s=1.0,
                       config_hash="h", shard=Shard())
    assert [c["seed"] for c in line["rounds"][0]["candidates"]] == [42, 43, 44]
    assert line["rounds"][0]["seed"] == 43 and line["final"] is None


def test_best_of_n_is_reproducible_and_one_seed_is_unchanged(tmp_path):
    a, _ = make(tmp_path / "a", rounds=1, seeds=2)
    b, _ = make(tmp_path / "b", rounds=1, seeds=2)
    ra, rb = a.refine(PROMPT), b.refine(PROMPT)
    assert [c.scores for c in ra.rounds[0].candidates] == [c.scores for c in rb.rounds[0].candidates]
    one, _ = make(tmp_path / "one", rounds=1)
    r1 = one.refine(PROMPT).rounds[0]
    assert r1.candidates == [] and r1.video == "round-1/video.mp4" and r1.seed == 42
    assert r1.done[:3] == ["generate", "caption", "score"]  # the paper's order with one seed


def test_best_of_n_resumes_mid_scoring(tmp_path):
    class DiesOnSecond(SeedScorer):
        def score(self, video, prompt):
            if len(self.videos) == 1:
                self.videos.append("died")
                raise KeyboardInterrupt  # like a kill between two seeds' scores
            return super().score(video, prompt)

    ref, _ = make(tmp_path, scorer=DiesOnSecond(), rounds=1, seeds=3)
    with pytest.raises(Exception):
        ref.refine(PROMPT)
    gen2, scorer2 = FakeGenerator(), SeedScorer()
    ref2, _ = make(tmp_path, gen=gen2, scorer=scorer2, rounds=1, seeds=3)
    res = ref2.refine(PROMPT)
    assert gen2.calls == []  # the three videos on disk were not rendered again
    assert res.record.status == "finished" and all(c.scores for c in res.rounds[0].candidates)


def test_a_lost_seed_video_regenerates_the_round(tmp_path):
    ref, _ = make(tmp_path, rounds=1, seeds=2)
    res = ref.refine(PROMPT)
    (res.run_dir / res.rounds[0].candidates[1].video).write_bytes(b"")
    gen2 = FakeGenerator()
    ref2, _ = make(tmp_path, gen=gen2, rounds=1, seeds=2)
    again = ref2.refine(PROMPT)
    assert len(gen2.calls) == 2 and (again.run_dir / again.rounds[0].candidates[1].video).stat().st_size > 0


def test_draft_rounds_render_cheap_then_the_best_at_full_settings(tmp_path):
    gen = DraftGenerator()
    scorer = SeedScorer()
    ref, _ = make(tmp_path, gen=gen, scorer=scorer, rounds=3, draft={"enabled": True})
    res = ref.refine(PROMPT)
    rec = res.record
    assert all(r.draft for r in rec.rounds) and len(rec.rounds) == 3
    assert gen.overrides[:3] == [{"steps": 10}] * 3  # 0.25 x the generator's 40 steps
    assert gen.overrides[3] is None  # the final render: full settings
    f = rec.final
    best = rec.rounds[rec.best_round - 1]
    assert f.round == best.index and f.prompt == best.prompt and f.seed == best.seed
    assert f.done == ["generate", "caption", "score"] and (res.run_dir / f.video).is_file()
    assert f.video == "final/video.mp4" and f.video_info["steps"] == 40
    assert gen.calls[-1] == best.prompt
    line = result_line(_Item(), rec, res.run_dir, tmp_path, status="finished", error=None, wall_s=1.0,
                       config_hash="h", shard=Shard())
    assert line["final"]["score"] == f.scores.score and line["final"]["video"].endswith("final/video.mp4")
    assert all(r["draft"] for r in line["rounds"])


def test_draft_settings_and_resume_of_the_final_render(tmp_path):
    gen = DraftGenerator()
    cache = {"kind": "first-block", "params": {"threshold": 0.1}}
    ref, _ = make(tmp_path, gen=gen, rounds=1, draft={"enabled": True, "steps": 7, "height": 32, "width": 48,
                                                      "cache": cache})
    res = ref.refine(PROMPT)
    assert gen.overrides[0] == {"steps": 7, "height": 32, "width": 48, "cache": cache}
    # the final render's video is lost: a rerun renders only it again
    (res.run_dir / res.record.final.video).unlink()
    gen2 = DraftGenerator()
    ref2, _ = make(tmp_path, gen=gen2, rounds=1, draft={"enabled": True, "steps": 7, "height": 32, "width": 48,
                                                        "cache": cache})
    again = ref2.refine(PROMPT)
    assert gen2.overrides == [None] and (again.run_dir / again.record.final.video).is_file()


def test_drafts_need_a_generator_with_per_call_settings(tmp_path):
    ref, _ = make(tmp_path, rounds=1, draft={"enabled": True})
    with pytest.raises(ConfigError, match="loop.draft"):
        ref.refine(PROMPT)


def test_records_without_the_new_fields_still_load(tmp_path):
    ref, _ = make(tmp_path, rounds=1)
    res = ref.refine(PROMPT)
    raw = json.loads((res.run_dir / "run.json").read_text())
    raw.pop("final")
    for r in raw["rounds"]:
        for k in ("seed", "candidates", "draft"):
            r.pop(k)
    (res.run_dir / "run.json").write_text(json.dumps(raw))
    rec = RunStore(res.run_dir).load()
    assert rec.rounds[0].candidates == [] and rec.final is None and rec.rounds[0].draft is False


class _Item:
    id, index, prompt, meta = "0000-x", 0, PROMPT, {}


# ---------------------------------------------------------------- PhyGDPO's CoT in the loop and the batch

def cot_llm(scores: dict[str, float]):
    """physics_llm plus PhyGDPO's CoT step: the score per user prompt (by a word in it)."""
    base = physics_llm()

    def answer(messages):
        text = " ".join(m["content"] for m in messages)
        if "physics_score" in text:
            score = next(v for k, v in scores.items() if k in text)
            return json.dumps({"elements": ["ball", "floor"], "vision_check": "both visible",
                               "physics_reasoning": "gravity accelerates the ball; it bounces",
                               "physics_score": score,
                               "extended_prompt": f"EXTENDED {score}: the ball accelerates down and bounces lower."})
        return base.script(messages)

    from doubles import ScriptedLLM
    return ScriptedLLM(answer)


def test_enhancer_writes_round_one_prompt(tmp_path):
    cfg = load_config(loop={"max_rounds": 1, "enhancer": "phygdpo"}, out=str(tmp_path))
    gen = FakeGenerator()
    ref = Refiner(cfg, llm=cot_llm({"rubber": 0.8}), generator=gen, captioner=FakeCaptioner(), scorer=SeedScorer())
    res = ref.refine(PROMPT)
    assert res.record.enhancement.physics_score == 0.8
    assert res.rounds[0].prompt.startswith("EXTENDED 0.8") and gen.calls[0] == res.rounds[0].prompt
    # resumed: the CoT is on disk, not asked again
    llm2 = cot_llm({"rubber": 0.1})
    again = Refiner(cfg, llm=llm2, generator=FakeGenerator(), captioner=FakeCaptioner(),
                    scorer=SeedScorer()).refine(PROMPT)
    assert again.record.enhancement.physics_score == 0.8 and llm2.calls == []


def test_min_physics_skips_prompts_under_it_in_a_batch(tmp_path):
    from phyt2v.batch import Batch
    from phyt2v.batch.sources import load_source

    src = tmp_path / "p.txt"
    src.write_text("a rubber ball bounces\na calm empty room\n")
    cfg = load_config(loop={"max_rounds": 1, "min_physics": 0.6})
    gen = FakeGenerator()
    ref = Refiner(cfg, llm=cot_llm({"rubber": 0.6, "calm": 0.59}), generator=gen, captioner=FakeCaptioner(),
                  scorer=SeedScorer())
    b = Batch(load_source(str(src)), cfg, out=tmp_path / "out", refiner=ref)
    summary = b.run()
    assert summary.finished == 2 and summary.filtered == 1 and summary.merged
    lines = [json.loads(x) for x in (b.dir / "results.jsonl").read_text().splitlines()]
    kept, skipped = lines
    assert kept["physics"]["score"] == 0.6 and kept["rounds"] and kept["rounds"][0]["prompt"] == "a rubber ball bounces"
    assert skipped["stop_reason"] == "not_physical" and skipped["rounds"] == [] and skipped["physics"]["physical"] is False
    assert gen.calls == ["a rubber ball bounces"]  # enhancer none: the gate only, the user's prompt is rendered
    from phyt2v.views.metrics import summarize_batch

    m = summarize_batch(b.dir)
    assert m["n_not_physical"] == 1 and m["rounds"]["best"]["overall"]["n"] == 1
    assert any("--min-physics" in w for w in m["warnings"])
