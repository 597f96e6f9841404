"""Quantization settings checked against the plan before any weights load: the package of the path the backend
really takes, fp8's GPU generation, a bitsandbytes that can move a swapped model, settings that cannot apply
(refused in one line, never ignored), and run.json's scorer_quantized from what the loaded scorer reports.

CUDA, the GPU's compute capability and the installed packages are stubbed with monkeypatch: the checks are what
is under test, and they must fire before anything loads (``registry.LOADS`` unchanged)."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v import registry
from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.loop import Refiner
from phyt2v.runtime import memplan
from phyt2v.runtime.quant import check_quantization

GiB = memplan.GiB
PROMPT = "a ball falls onto the floor"


@pytest.fixture
def gpu(monkeypatch):
    """A CUDA machine as the checks see it: device cuda:0, compute capability 9.0, torchao and bitsandbytes 0.48.2
    installed. Tests change ``gpu.capability``, ``gpu.missing`` and ``gpu.bnb``."""
    import diffusers
    import torch

    # diffusers decides at import which optional packages exist (bitsandbytes for its LoRA loaders): import it and
    # the pipelines the tests build before find_spec is stubbed below, or it would believe the stub
    for name in ("CogVideoXPipeline", "WanPipeline"):
        getattr(diffusers, name)

    class State:
        capability, missing, bnb = (9, 0), set(), "0.48.2"

    state = State()
    real_spec, real_version = importlib.util.find_spec, importlib.metadata.version
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state.capability)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        None if name in state.missing else importlib.machinery.ModuleSpec(name, None)
        if name in ("torchao", "bitsandbytes") else real_spec(name, *a)))
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: state.bnb if name == "bitsandbytes" else real_version(name))
    return state


def refused_before_loading(config, match: str, free: int | None = 80 * GiB) -> str:
    loads = dict(registry.LOADS)
    with pytest.raises(ConfigError, match=match) as ei:
        memplan.run_plan(config, free)
    assert dict(registry.LOADS) == loads
    assert "\n" not in str(ei.value)
    return str(ei.value)


def test_the_check_asks_for_the_package_of_the_path_the_backend_takes(gpu):
    gpu.missing = {"torchao"}
    check_quantization("int8", "cuda:0", "captioner.quantization", "transformers")  # bitsandbytes: there
    with pytest.raises(ConfigError, match=r"scorer.quantization=int8 needs the 'torchao' package \(this model's "):
        check_quantization("int8", "cuda:0", "scorer.quantization", "torchao")
    gpu.missing = {"bitsandbytes"}
    check_quantization("nf4", "cuda:0", "scorer.quantization", "torchao")  # torchao: there
    with pytest.raises(ConfigError, match="captioner.quantization=nf4 needs the 'bitsandbytes' package"):
        check_quantization("nf4", "cuda:0", "captioner.quantization", "transformers")


def test_videocon_quantized_needs_torchao_not_bitsandbytes_and_says_so_before_any_load(gpu, monkeypatch, tmp_path):
    gpu.missing = {"torchao"}
    config = load_config(out=str(tmp_path), captioner={"model": "Qwen/Qwen2.5-VL-3B-Instruct"},
                         scorer={"backend": "videocon", "quantization": "int8"})
    refused_before_loading(config, "scorer.quantization=int8 needs the 'torchao' package")
    monkeypatch.setattr(memplan, "free_for_run", lambda: 80 * GiB)
    loads = dict(registry.LOADS)
    with pytest.raises(ConfigError, match="'torchao'"):  # a run refuses it before the generator loads
        Refiner(config).refine(PROMPT)
    assert dict(registry.LOADS) == loads and not any(tmp_path.iterdir())
    gpu.missing = {"bitsandbytes"}
    assert memplan.run_plan(config, 80 * GiB).quantized_scorer


@pytest.mark.parametrize("role", ["captioner", "scorer"])
def test_fp8_needs_compute_capability_8_9(gpu, role):
    gpu.capability = (8, 0)  # A100
    sections = {"captioner": {"model": "Qwen/Qwen2.5-VL-3B-Instruct"}, "scorer": {"backend": "videocon"}}
    sections[role]["quantization"] = "fp8"
    config = load_config(None, **sections)
    msg = refused_before_loading(config, f"{role}.quantization=fp8 needs a GPU of compute capability 8.9")
    assert "is 8.0" in msg and f"set {role}.quantization=int8 or nf4" in msg
    gpu.capability = (8, 9)  # L40S, RTX 4090
    memplan.run_plan(config, 80 * GiB)


def test_a_bitsandbytes_model_moved_by_the_swap_placement_needs_bitsandbytes_0_48(gpu):
    gpu.bnb = "0.45.5"
    config = load_config("local-24gb", captioner={"quantization": "nf4"})
    assert memplan.make_plan(config, 24 * GiB, cuda=True, env={}).placement == "swap"
    msg = refused_before_loading(config, r"captioner.quantization=nf4 under the swap placement", 24 * GiB)
    assert "bitsandbytes >= 0.48 (installed: 0.45.5)" in msg and "pip install -U bitsandbytes" in msg
    assert memplan.run_plan(config, 80 * GiB).placement == "resident"  # not moved: any version
    gpu.bnb = "0.48.2"
    assert memplan.run_plan(config, 24 * GiB).placement == "swap"


def test_settings_that_cannot_apply_are_refused_on_cpu_before_loading(tmp_path):
    """No GPU here: every one of these was accepted in silence before (or ignored)."""
    smoke = dict(out=str(tmp_path))
    refused_before_loading(load_config("smoke", **smoke, scorer={"quantization": "nf4"}),
                           r"scorer.quantization=nf4 does not apply: the scorer is the captioner's VLM .*"
                           r"set captioner.quantization=nf4 to quantize the shared copy, or scorer.quantization=none",
                           None)
    refused_before_loading(load_config("smoke", **smoke, llm={"quantization": "int8"}),
                           r"llm.quantization=int8 does not apply to the llm backend 'embedded' \(a GGUF file "
                           r"carries its own quantization", None)
    refused_before_loading(load_config("smoke", **smoke, llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1",
                                                              "quantization": "nf4"}),
                           r"llm.quantization=nf4 does not apply to the llm backend 'openai'", None)
    refused_before_loading(load_config("smoke", **smoke, scorer={"backend": "videophy2", "model": "tiny",
                                                                 "quantization": "nf4"}),
                           r"scorer.quantization=nf4 needs a CUDA GPU \(device is cpu\)", None)
    cfg = load_config("smoke", **smoke, captioner={"quantization": "int8"})
    refused_before_loading(cfg, r"captioner.quantization=int8 needs a CUDA GPU", None)
    loads = dict(registry.LOADS)
    with pytest.raises(ConfigError, match="captioner.quantization=int8 needs a CUDA GPU"):
        Refiner(cfg).refine(PROMPT)
    assert dict(registry.LOADS) == loads and not any(tmp_path.iterdir())


def test_the_plan_counts_the_shared_copy_a_vlm_judge_scores_with():
    config = load_config(None, captioner={"model": "Qwen/Qwen2.5-VL-3B-Instruct", "quantization": "nf4"},
                         scorer={"backend": "vlm-judge"})
    assert memplan.make_plan(config, 80 * GiB, cuda=True, env={}).quantized_scorer  # it scores with the nf4 copy
    config = load_config(None, captioner={"model": "Qwen/Qwen2.5-VL-3B-Instruct"}, scorer={"backend": "vlm-judge"})
    assert not memplan.make_plan(config, 80 * GiB, cuda=True, env={}).quantized_scorer


class QuantizedScorer(FakeScorer):
    quantization = "int8"


@pytest.mark.parametrize("scorer, recorded", [(QuantizedScorer, True), (FakeScorer, False)])
def test_run_json_records_what_the_loaded_scorer_reports_not_the_config(tmp_path, scorer, recorded):
    cfg = load_config(out=str(tmp_path), loop={"max_rounds": 1})  # scorer.quantization: none
    res = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                  scorer=scorer([(0.5, 0.5)])).refine(PROMPT)
    assert res.record.scorer_quantized is recorded


def test_real_scorers_report_the_quantization_they_run_with():
    vlm_judge = registry.build("scorer", load_config("smoke"), cache=False)
    assert vlm_judge.quantization == "none"


def test_backends_built_without_a_run_refuse_the_same_settings():
    """`phyt2v enhance` builds the LLM and `phyt2v score` the scorer without a run's plan: same refusals."""
    loads = dict(registry.LOADS)
    with pytest.raises(ConfigError, match=r"llm.quantization=int8 does not apply to the llm backend 'embedded'"):
        registry.build("llm", load_config("smoke", llm={"quantization": "int8"}), cache=False)
    with pytest.raises(ConfigError, match=r"scorer.quantization=nf4 does not apply: the scorer is the captioner's"):
        registry.build("scorer", load_config("smoke", scorer={"quantization": "nf4"}), cache=False)
    with pytest.raises(ConfigError, match=r"llm.quantization=fp8 does not apply: the llm is the captioner's"):
        registry.build("llm", load_config("smoke", llm={"backend": "vlm", "quantization": "fp8"}), cache=False)
    assert dict(registry.LOADS) == loads
