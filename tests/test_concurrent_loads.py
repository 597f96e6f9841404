"""Two Refiners in two threads of one process (the Python API) load the real tiny smoke models: both runs
finish, no two model loads ever run at once (diffusers / transformers loading patches process-wide
state: the default dtype, ``nn.Module.register_parameter``, the init functions), and no two GPU steps run at once
(the two Refiners share the loaded backends through the registry's cache; a diffusers pipeline is not
thread-safe: two generates on one pipeline at once fail with mismatched tensor sizes)."""

from __future__ import annotations

import functools
import threading
import time

import pytest
from llm_servers import StepServer

from phyt2v import Refiner, registry
from phyt2v.config import load_config
from phyt2v.errors import Phyt2vError

pytestmark = pytest.mark.slow

PROMPTS = ["a rubber ball is dropped onto a wooden floor", "a glass of water tips over on a table"]


def record_loads(monkeypatch) -> list[tuple[str, float, float]]:
    """Wrap every built-in backend class's ``from_config`` (the load itself) with a recorder of its span."""
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    for role in registry.ROLES:
        for name in registry.available(role):
            try:
                cls = registry.resolve(role, name)
            except Phyt2vError:  # a plugin whose package is missing: nothing of it loads here
                continue
            real = cls.__dict__.get("from_config")
            if real is None:
                continue

            def timed(klass, config, _real=real.__func__, _name=f"{role}:{name}"):
                t0 = time.perf_counter()
                try:
                    return _real(klass, config)
                finally:
                    with lock:
                        spans.append((_name, t0, time.perf_counter()))

            monkeypatch.setattr(cls, "from_config", classmethod(timed))
    return spans


def record_generates(monkeypatch, hold_s: float) -> list[tuple[float, float]]:
    """(start, end) of every generate of the diffusers backend; each holds ``hold_s`` longer (a wider window for
    a second thread's generate to run beside it, as a real 5-minute one would)."""
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    spans: list[tuple[float, float]] = []
    real = DiffusersGenerator.generate

    @functools.wraps(real)
    def timed(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            out = real(self, *a, **kw)
            time.sleep(hold_s)
            return out
        finally:
            spans.append((t0, time.perf_counter()))

    monkeypatch.setattr(DiffusersGenerator, "generate", timed)
    return spans


def test_two_refiners_in_two_threads_load_one_at_a_time_and_both_finish(tmp_path, monkeypatch):
    registry.clear_cache()
    spans = record_loads(monkeypatch)
    gens = record_generates(monkeypatch, 0.3)
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}
    gate = threading.Barrier(2)
    server = StepServer().__enter__()  # the LLM answers at once from loopback: the test is about the loads

    def one(i: int) -> None:
        cfg = load_config("smoke", out=str(tmp_path / f"out{i}"), loop={"max_rounds": 1, "min_rounds": 1},
                          llm={"backend": "openai", "base_url": server.base_url, "model": "step-server"})
        ref = Refiner(cfg)
        gate.wait(10)  # both start loading together
        try:
            results[i] = ref.refine(PROMPTS[i])
        except BaseException as e:  # noqa: BLE001  (reported below with its thread)
            errors[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(600)
    finally:
        server.__exit__(None, None, None)
        registry.clear_cache()
    assert not errors, {i: f"{type(e).__name__}: {e}" for i, e in errors.items()}
    assert [results[i].record.status for i in range(2)] == ["finished", "finished"]
    assert len(spans) >= 4  # llm, generator, captioner, scorer: each built at least once
    spans.sort(key=lambda s: s[1])
    for (a, a0, a1), (b, b0, b1) in zip(spans, spans[1:]):
        assert b0 >= a1, f"{b} started loading at {b0:.3f} while {a} was loading until {a1:.3f}"
    gens.sort()
    assert len(gens) == 2  # one round each, on the one shared pipeline
    assert gens[1][0] >= gens[0][1], "two generates ran at once on the shared pipeline"
