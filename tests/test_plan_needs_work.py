"""The memory plan is made only when there is work to do: a finished run, or a batch whose prompts are all done,
is returned without planning, so a GPU too small for the preset (a plan that would raise) does not stop a rerun,
and nothing loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v import registry
from phyt2v.batch import Batch
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.loop import Refiner
from phyt2v.runtime import memplan

PROMPTS = ["a ball rolls down a ramp", "water pours into a glass"]
SMALL_CARD = 8 * memplan.GiB  # the default stack (CogVideoX-5B, Qwen2.5-VL-7B, VideoCon-Physics) cannot fit


def doubles() -> dict:
    return dict(llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                scorer=FakeScorer([(0.5, 0.5)] * 8))


def on_small_card(monkeypatch, config) -> None:
    monkeypatch.setattr(memplan, "free_for_run", lambda: SMALL_CARD)
    with pytest.raises(ConfigError, match="memory plan"):  # what any plan on this card would do
        memplan.run_plan(config)


def test_refining_a_finished_run_returns_it_without_planning(tmp_path, monkeypatch):
    monkeypatch.setattr(memplan, "free_for_run", lambda: None)  # the first run: no GPU
    cfg = load_config(out=str(tmp_path), loop={"max_rounds": 1})
    first = Refiner(cfg, **doubles()).refine(PROMPTS[0])
    assert first.record.status == "finished"
    on_small_card(monkeypatch, cfg)
    loads = dict(registry.LOADS)
    again = Refiner(cfg).refine(PROMPTS[0])  # real backends by name: nothing may load, nothing may plan
    assert again.run_dir == first.run_dir and again.record.status == "finished"
    assert dict(registry.LOADS) == loads


def test_rerunning_a_finished_batch_plans_and_loads_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(memplan, "free_for_run", lambda: None)
    src_file = tmp_path / "prompts.txt"
    src_file.write_text("\n".join(PROMPTS) + "\n")
    cfg = load_config(loop={"max_rounds": 1})
    out = tmp_path / "out"
    first = Batch(load_source(str(src_file)), cfg, out=out, refiner=Refiner(cfg, **doubles())).run()
    assert first.ok and first.finished == len(PROMPTS)
    on_small_card(monkeypatch, cfg)
    loads = dict(registry.LOADS)
    again = Batch(load_source(str(src_file)), cfg, out=out).run()  # its own Refiner, real backends by name
    assert again.ok and again.already_done == len(PROMPTS) and again.finished == 0 and again.merged
    assert dict(registry.LOADS) == loads


def test_a_batch_with_work_still_plans_first(tmp_path, monkeypatch):
    """The other side: a prompt left to run is refused by the plan before anything loads."""
    src_file = tmp_path / "prompts.txt"
    src_file.write_text(PROMPTS[0] + "\n")
    cfg = load_config(loop={"max_rounds": 1})
    on_small_card(monkeypatch, cfg)
    loads = dict(registry.LOADS)
    with pytest.raises(ConfigError, match="memory plan"):
        Batch(load_source(str(src_file)), cfg, out=tmp_path / "out").run()
    assert dict(registry.LOADS) == loads
    assert not list(Path(tmp_path / "out").glob("*/runs/*"))  # refused before its run folder was made
