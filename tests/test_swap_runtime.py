"""The ``swap`` / ``offload`` placements on CPU, on the real tiny smoke models: the plan is forced to the placement
and the swapper's mover records each move instead of moving. Only declared device work (generate, caption, score,
a local LLM's complete) activates a role; a remote or llama.cpp LLM is never wrapped, so in a pipelined batch its
calls overlap the GPU lane's work; tokenizer calls move nothing; a generator under diffusers' offload is never moved."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time

import pytest
from llm_servers import StepServer, make_tiny_causal_lm, openai_llm

from phyt2v import registry
from phyt2v.batch import Batch
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.runtime import memplan
from phyt2v.runtime.swap import Swapper, modules_of

GiB = 2**30
PROMPTS = ["a rubber ball is dropped onto a wooden floor", "a glass of water tips over on a table",
           "a wooden block slides down a ramp"]


class Moves:
    """A swapper's mover that records (module id, target) instead of moving (every thread)."""

    def __init__(self):
        self.log: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __call__(self, module, target: str) -> None:
        with self._lock:
            self.log.append((id(module), target))


def force_placement(monkeypatch, placement: str, offload: str = "none") -> list[Swapper]:
    """Every run plan says ``placement`` (a 24 GiB card); each swapper ``memplan.swapper_for`` makes (the real
    function: its skip rule runs) targets a fake 'gpu' device with a recording mover. Returns those swappers."""
    made: list[Swapper] = []
    real_plan, real_swapper = memplan.run_plan, memplan.swapper_for

    def run_plan(config, free_bytes=None):
        return dataclasses.replace(real_plan(config, 24 * GiB), placement=placement, generator_offload=offload)

    def swapper_for(plan, device=None):
        sw = real_swapper(plan, "gpu")
        sw.move = Moves()
        made.append(sw)
        return sw

    monkeypatch.setattr(memplan, "run_plan", run_plan)
    monkeypatch.setattr(memplan, "swapper_for", swapper_for)
    return made


def record_device_work(monkeypatch) -> list[tuple[str, float, float]]:
    """(method, start, end) of every generate / caption / score the tiny backends run (their real code, timed)."""
    from phyt2v.captioners.vlm import VLMCaptioner
    from phyt2v.generators.diffusers_gen import DiffusersGenerator
    from phyt2v.scorers.vlm_judge import VLMJudgeScorer

    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    for cls, name in ((DiffusersGenerator, "generate"), (VLMCaptioner, "caption"), (VLMJudgeScorer, "score")):
        real = getattr(cls, name)

        @functools.wraps(real)
        def timed(self, *a, _real=real, _name=name, **kw):
            t0 = time.perf_counter()
            try:
                return _real(self, *a, **kw)
            finally:
                with lock:
                    spans.append((_name, t0, time.perf_counter()))

        monkeypatch.setattr(cls, name, timed)
    return spans


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.slow
def test_swap_moves_only_for_device_work_and_a_remote_llm_overlaps_it(tmp_path, monkeypatch):
    made = force_placement(monkeypatch, "swap")
    device = record_device_work(monkeypatch)
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(PROMPTS) + "\n")
    with StepServer(delay_s=0.3) as server:
        cfg = load_config("smoke", out=str(tmp_path / "out"),
                          llm={"backend": "openai", "base_url": server.base_url, "model": "step-server"})
        ref = Refiner(cfg)
        summary = Batch(load_source(str(src)), cfg, refiner=ref, concurrency=3).run()
        llm_spans = list(server.spans)
    assert summary.finished == len(PROMPTS) and not summary.failed
    (sw,) = made
    # (c) the remote LLM has no torch modules: it is not wrapped, not registered
    assert type(ref.loaded("llm")).__name__ == "OpenAILLM" and "llm" not in sw.roles
    # (a) LLM requests were answered while the GPU roles worked, and several were in flight together
    work = [(a, b) for _, a, b in device]
    assert any(overlap(s, w) for s in llm_spans for w in work), "no LLM call overlapped the GPU work"
    assert any(overlap(s, t) for i, s in enumerate(llm_spans) for t in llm_spans[i + 1:])
    # every role activation was for device work: at most one per generate / caption / score
    assert 0 < sw.swaps <= len(device), (sw.swaps, len(device))
    # (b) tokenizer calls on the generator move nothing, and leave the active role as it is
    gen = ref.loaded("generator")
    sw.activate("captioner")
    sw.move.log.clear()
    assert gen.count_tokens("a ball falls") > 0 and gen.tokens_per_word() > 0 and gen.token_counts("a ball")
    assert sw.move.log == [] and sw.active == "captioner"
    gen.generate("a ball falls", seed=1, out_path=tmp_path / "again.mp4")  # device work still swaps it in
    gen_ids = {id(m) for m in modules_of(gen._backend)}
    assert gen_ids and {(i, "gpu") for i in gen_ids} <= set(sw.move.log) and sw.active == "generator"


def test_roles_without_modules_on_the_device_are_not_wrapped(tmp_path):
    """A remote LLM and the embedded llama.cpp LLM have no torch modules; a local LLM pinned to the CPU has
    modules a CUDA swapper must not move: none of them is wrapped or registered. A local LLM meant for the device
    is wrapped, and its ``complete`` is device work."""
    moves = Moves()
    sw = Swapper("cuda:0", move=moves)
    with StepServer() as server:
        remote = openai_llm(server)
        assert sw.wrap("llm", remote) is remote
    xllamacpp = pytest.importorskip("xllamacpp")  # noqa: F841
    from phyt2v.llms.embedded import EmbeddedLLM

    embedded = EmbeddedLLM.from_config(load_config("smoke"))
    try:
        assert sw.wrap("llm", embedded) is embedded
    finally:
        embedded.close()
    from phyt2v.llms.transformers_llm import TransformersLLM

    folder = make_tiny_causal_lm(tmp_path / "lm")
    on_cpu = TransformersLLM(model=str(folder), device="cpu", max_tokens=4)
    assert sw.wrap("llm", on_cpu) is on_cpu and sw.roles == {}
    fake_gpu = Swapper("gpu", move=moves)  # the same model, for a swapper that owns its device
    wrapped = fake_gpu.wrap("llm", on_cpu)
    assert wrapped is not on_cpu and list(fake_gpu.roles) == ["llm"]
    assert isinstance(wrapped.complete([{"role": "user", "content": "hi"}]), str)
    assert (id(on_cpu.model), "gpu") in moves.log and fake_gpu.active == "llm"


@pytest.mark.slow
def test_an_offloaded_generator_is_never_moved_by_the_swapper(tmp_path):
    """Under the ``offload`` placement diffusers' own hooks keep the generator off the GPU when idle: the
    swapper parks the other roles for it but never moves it (``swapper_for`` skips it). Under ``swap`` it moves."""
    cfg = load_config("smoke")
    gen_raw, cap_raw = registry.build("generator", cfg), registry.build("captioner", cfg)
    gen_ids = {id(m) for m in modules_of(gen_raw)}
    cap_ids = {id(m) for m in modules_of(cap_raw)}
    assert gen_ids and cap_ids
    for placement, offload in (("offload", "model"), ("swap", "none")):
        plan = dataclasses.replace(memplan.make_plan(cfg, 24 * GiB), placement=placement, generator_offload=offload)
        sw = memplan.swapper_for(plan, device="gpu")
        sw.move = moves = Moves()
        gen, cap = sw.wrap("generator", gen_raw), sw.wrap("captioner", cap_raw)
        sw.park_all()
        first = gen.generate("a ball falls", seed=1, out_path=tmp_path / f"{placement}-1.mp4")
        cap.caption(first.path)
        moves.log.clear()
        gen.generate("a ball falls", seed=2, out_path=tmp_path / f"{placement}-2.mp4")
        moved = {i for i, _ in moves.log}
        assert {(i, "cpu") for i in cap_ids} <= set(moves.log)  # the captioner parked for the generator
        if placement == "offload":
            assert not moved & gen_ids, "the swapper moved a generator under diffusers' offload"
        else:
            assert {(i, "gpu") for i in gen_ids} <= set(moves.log)
