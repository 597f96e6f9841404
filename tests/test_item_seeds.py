"""Per-item seeds (LVD's benchmark repeats each prompt with a seed per index): a batch of the ``lvd`` source renders
each item with ``loop.seed`` + its index, so repeats of a prompt give different videos; the seed is part of each
run's identity (its record's config hash and saved config), the batch folder is told apart from one without item
seeds, and a resumed batch renders nothing again. Other sources keep ``loop.seed``. Loop logic with doubles."""

from __future__ import annotations

import json

from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v.batch import Batch
from phyt2v.batch import folder as batchdir
from phyt2v.batch.lvd import lvd_items
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.loop.run import with_seed
from phyt2v.store.record import RunRecord


class SeedGenerator(FakeGenerator):
    def __init__(self):
        super().__init__()
        self.seeds: list[int] = []

    def generate(self, prompt, *, seed, out_path, on_step=None):
        self.seeds.append(seed)
        return super().generate(prompt, seed=seed, out_path=out_path, on_step=on_step)


def batch(tmp_path, source, cfg, gen):
    ref = Refiner(cfg, llm=physics_llm(), generator=gen, captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)] * 4))
    return Batch(source, cfg, out=tmp_path, limit=3, refiner=ref).run()


def test_lvd_items_render_with_their_own_seed_and_carry_it_in_their_identity(tmp_path):
    assert [m["seed"] for _, m in lvd_items()[:3]] == [0, 1, 2] and lvd_items()[499][1]["seed"] == 499
    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1, "seed": 100})
    gen = SeedGenerator()
    s = batch(tmp_path, load_source("lvd"), cfg, gen)
    assert s.finished == 3 and gen.seeds == [100, 101, 102]  # items 0..2: one prompt repeated, three seeds
    lines = list(batchdir.read_results(s.batch_dir).values())
    assert len({ln["prompt"] for ln in lines}) == 1 and [ln["rounds"][0]["seed"] for ln in lines] == [100, 101, 102]
    for ln, seed in zip(lines, (100, 101, 102)):
        run_dir = s.batch_dir / ln["run_dir"]
        rec = RunRecord.model_validate_json((run_dir / "run.json").read_text())
        saved = json.loads((run_dir / "config.json").read_text())
        assert saved["loop"]["seed"] == seed and rec.config_hash == with_seed(cfg, seed).hash()
    assert len({with_seed(cfg, s).hash() for s in (100, 101, 102)}) == 3 and with_seed(cfg, 100) is cfg
    again = batch(tmp_path, load_source("lvd"), cfg, gen)
    assert again.already_done == 3 and gen.seeds == [100, 101, 102]  # resumed: nothing rendered twice


def test_other_sources_keep_loop_seed(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a ball falls\na cup tips over\na ball falls again\n")
    cfg = load_config(loop={"max_rounds": 1, "min_rounds": 1, "seed": 7})
    gen = SeedGenerator()
    s = batch(tmp_path / "out", load_source(str(prompts)), cfg, gen)
    assert s.finished == 3 and gen.seeds == [7, 7, 7]
    assert load_source("lvd").options["item_seeds"] is True and "item_seeds" not in load_source(str(prompts)).options
