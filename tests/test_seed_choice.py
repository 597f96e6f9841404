"""Which seed a best-of-N round keeps, and which seed the final render of a drafted run uses (loop logic on the
doubles). Both were mutations no test caught: a flipped tie-break, and the final render drawn with the run seed."""

from pathlib import Path

from doubles import FakeCaptioner, FakeGenerator, physics_llm

from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.roles import Scores

PROMPT = "a rubber ball is dropped onto a wooden floor"


class ByName:
    """Scores by the video's file name: ``video-s<seed>.mp4`` gets ``by_seed[seed]``, any other name ``other``
    (VideoPhy-2's 1-5 ratings make such exact ties common)."""

    backend, model_id = "fake", "fake-judge"

    def __init__(self, by_seed: dict[int, float], other: float = 0.5):
        self.by_seed, self.other = by_seed, other

    def score(self, video, prompt):
        stem = Path(video).stem
        v = self.by_seed[int(stem.split("-s")[-1])] if "-s" in stem else self.other
        return Scores(sa=v, pc=v)


class SeedRecorder(FakeGenerator):
    """Records each call's seed; takes per-call overrides (drafts) as the diffusers backends do."""

    def __init__(self):
        super().__init__()
        self.seeds: list[int] = []

    def generate(self, prompt, *, seed, out_path, on_step=None, overrides=None):
        self.seeds.append(seed)
        return super().generate(prompt, seed=seed, out_path=out_path, on_step=on_step)


def refiner(tmp_path, scorer, gen=None, **loop):
    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1, "seed": 42, **loop}, out=str(tmp_path))
    return Refiner(cfg, llm=physics_llm(), generator=gen or FakeGenerator(), captioner=FakeCaptioner(),
                   scorer=scorer)


def test_a_tie_between_seeds_goes_to_the_lowest_seed(tmp_path):
    res = refiner(tmp_path, ByName({42: 0.4, 43: 0.7, 44: 0.7, 45: 0.7}), seeds=4).refine(PROMPT)
    rnd = res.rounds[0]
    assert [c.scores.score for c in rnd.candidates] == [0.4, 0.7, 0.7, 0.7]
    assert rnd.seed == 43 and rnd.video == "round-1/video-s43.mp4" and rnd.scores.score == 0.7


def test_all_seeds_tied_keeps_the_run_seed(tmp_path):
    res = refiner(tmp_path, ByName({42: 0.5, 43: 0.5, 44: 0.5}), seeds=3).refine(PROMPT)
    assert res.rounds[0].seed == 42 and res.rounds[0].video == "round-1/video-s42.mp4"


def test_the_final_render_of_a_drafted_run_uses_the_best_rounds_best_seed(tmp_path):
    gen = SeedRecorder()
    res = refiner(tmp_path, ByName({42: 0.3, 43: 0.9, 44: 0.6}), gen=gen, seeds=3,
                  draft={"enabled": True, "steps": 5}).refine(PROMPT)
    best = res.rounds[res.record.best_round - 1]
    assert best.seed == 43  # not the run seed (42): the test means something only then
    assert res.record.final.seed == 43 and gen.seeds[-1] == 43  # the final render: that seed at full settings
    assert gen.seeds == [42, 43, 44, 43]
