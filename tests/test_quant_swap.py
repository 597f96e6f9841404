"""Quantization refused clearly without CUDA or its package; the swap mover on real tiny backends;
the memory plan recorded in run.json and refused before any weights load."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).parent))
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm  # noqa: E402

from phyt2v import Refiner, registry
from phyt2v.config import load_config  # noqa: E402
from phyt2v.errors import ConfigError  # noqa: E402
from phyt2v.runtime import memplan
from phyt2v.runtime.quant import check_quantization  # noqa: E402
from phyt2v.runtime.swap import Swapper, modules_of  # noqa: E402
from phyt2v.store.record import RunRecord  # noqa: E402
from phyt2v.vlm import runtime as vlm  # noqa: E402

VIDEO = next(iter(sorted((Path(__file__).resolve().parents[1].parent / "shared" / "videos").glob("*.mp4"))), None)


def test_quantization_needs_cuda_and_its_package(monkeypatch):
    with pytest.raises(ConfigError, match=r"captioner.quantization=nf4 needs a CUDA GPU \(device is cpu\)"):
        check_quantization("nf4", "cpu", "captioner.quantization")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("bitsandbytes", "torchao") else real(name, *a))
    with pytest.raises(ConfigError, match=r"llm.quantization=int8 needs the 'bitsandbytes' package"):
        check_quantization("int8", "cuda:0", "llm.quantization")
    with pytest.raises(ConfigError, match=r"scorer.quantization=fp8 needs the 'torchao' package"):
        check_quantization("fp8", "cuda:0", "scorer.quantization")
    check_quantization("none", "cpu", "scorer.quantization")
    with pytest.raises(ConfigError, match="captioner.quantization"):
        load_config("smoke", overrides=["captioner.quantization=int4"])


def test_quantized_captioner_and_llm_refused_before_loading():
    vlm.clear_cache()
    before = sum(registry.LOADS.values())
    config = load_config("smoke", captioner={"quantization": "int8"})
    with pytest.raises(ConfigError, match="captioner.quantization=int8 needs a CUDA GPU"):
        registry.build("captioner", config, cache=False)
    config = load_config("smoke", llm={"backend": "transformers", "model": "Qwen/Qwen2.5-0.5B-Instruct",
                                       "quantization": "nf4", "device": "cpu"})
    with pytest.raises(ConfigError, match="llm.quantization=nf4 needs a CUDA GPU"):
        registry.build("llm", config, cache=False)
    assert sum(registry.LOADS.values()) == before


def test_swapper_parks_other_roles_and_keeps_the_shared_vlm():
    """Real tiny generator, captioner and vlm LLM (one shared VLM); the mover records each move."""
    vlm.clear_cache()
    config = load_config("smoke", llm={"backend": "vlm", "max_tokens": 16})
    moves: list[tuple[int, str]] = []
    sw = Swapper("gpu", park="cpu", move=lambda m, target: moves.append((id(m), target)))
    gen = sw.wrap("generator", registry.build("generator", config, cache=False))
    cap = sw.wrap("captioner", registry.build("captioner", config, cache=False))
    llm = sw.wrap("llm", registry.build("llm", config, cache=False))
    shared = id(cap.model)
    assert [id(m) for m in modules_of(llm._backend)] == [shared]
    gen_ids = {id(m) for m in modules_of(gen._backend)}
    assert len(gen_ids) >= 3  # transformer, text encoder, vae
    moves.clear()
    sw.active = "generator"
    assert isinstance(llm.complete([{"role": "user", "content": "hi"}]), str)
    assert (shared, "gpu") in moves and {(g, "cpu") for g in gen_ids} <= set(moves)
    moves.clear()
    sw.activate("captioner")
    assert (shared, "cpu") not in moves  # shared with the llm: never parked between the two roles
    assert llm.backend == "vlm" and sw.swaps == 2


def test_a_cached_role_registered_while_parked_is_moved_in_on_first_use():
    """The llm loads the VLM; the captioner gets the same (now parked) copy from the cache: its first call
    must move it to the device, not assume it is there."""
    vlm.clear_cache()
    config = load_config("smoke", llm={"backend": "vlm", "max_tokens": 16})
    moves: list[tuple[int, str]] = []
    sw = Swapper("gpu", park="cpu", move=lambda m, target: moves.append((id(m), target)))
    sw.wrap("llm", registry.build("llm", config, cache=False))
    sw.park_all()
    cap = sw.wrap("captioner", registry.build("captioner", config, cache=False))
    moves.clear()
    cap.caption(VIDEO) if VIDEO else sw.activate("captioner")
    assert (id(cap.model), "gpu") in moves


def test_run_records_the_plan_and_refuses_before_loading(tmp_path, monkeypatch):
    cfg = load_config(out=str(tmp_path), loop={"max_rounds": 1})
    ref = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(),
                  scorer=FakeScorer([(0.5, 0.5)]))
    res = ref.refine("a ball falls onto the floor")
    rec = RunRecord.model_validate_json((res.run_dir / "run.json").read_text())
    assert rec.memory_plan["placement"] == "cpu" and "generator" in rec.memory_plan["roles"]
    assert rec.memory_plan["llm_choice"]["backend"] in ("embedded", "openai")
    assert rec.scorer_quantized is False

    monkeypatch.setattr(memplan, "free_for_run", lambda: 8 * 2**30)  # an 8 GiB card
    big = load_config(out=str(tmp_path / "b"), captioner={"model": "Qwen/Qwen2.5-VL-7B-Instruct"},
                      scorer={"quantization": "int8"})
    before = sum(registry.LOADS.values())
    with pytest.raises(ConfigError, match="memory plan: the captioner"):
        Refiner(big).refine("a ball falls onto the floor")
    assert sum(registry.LOADS.values()) == before and not (tmp_path / "b").exists()
