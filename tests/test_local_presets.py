"""The local-* presets: on their card, with CUDA and no key, a real local LLM (the shared VLM) and a plan
that fits; each note states the plan's placement and peak."""

from __future__ import annotations

import re

import pytest

from phyt2v import Refiner
from phyt2v.config import load_config
from phyt2v.runtime import memplan

CARDS = {"local-24gb": 24, "local-48gb": 48, "local-80gb": 80}


@pytest.mark.parametrize("preset, gib", CARDS.items())
def test_local_preset_fits_its_card_and_uses_a_local_llm(preset, gib):
    config = load_config(preset)
    plan = memplan.make_plan(config, gib * memplan.GiB, cuda=True, env={})
    assert plan.peak_bytes <= gib * memplan.GiB
    assert plan.llm["backend"] == "vlm" and plan.roles["llm"].shared_with == "captioner"
    assert config.scorer.backend == "videocon" and not plan.quantized_scorer
    peak = re.search(r"est\. peak ([\d.]+) GiB", config.note)
    assert peak and float(peak.group(1)) == round(plan.peak_bytes / memplan.GiB, 1), "update the preset's note"
    assert plan.placement in config.note
    # with an API key the same preset uses the endpoint instead
    keyed = memplan.make_plan(config, gib * memplan.GiB, cuda=True, env={config.llm.api_key_env: "sk-x"})
    assert keyed.llm["backend"] == "openai"


def test_local_24gb_swaps_and_would_not_fit_resident():
    config = load_config("local-24gb")
    plan = memplan.make_plan(config, 24 * memplan.GiB, cuda=True, env={})
    resident = sum(r.bytes for r in plan.roles.values())
    assert plan.placement == "swap" and resident > 24 * memplan.GiB


@pytest.mark.parametrize("preset", CARDS)
def test_local_preset_backends_exist(preset):
    Refiner(load_config(preset))  # backends known, and every generator setting one its family takes
