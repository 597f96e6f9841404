"""Which failures stop a batch: a backend that does not load (LoadError) or a config error stops it after the
first prompt (every other prompt would fail the same way); a failure of one prompt (an LLM reply that never
parses) is recorded on its line and the batch goes on. Loop doubles for the models; the load failures are
injected where the Refiner builds a backend (``registry.build``)."""

import json

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, ScriptedLLM, physics_llm

from phyt2v import registry
from phyt2v.batch import Batch
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.errors import ConfigError, LoadError, ParseError
from phyt2v.loop import Refiner

PROMPTS = ["a ball rolls down a ramp", "water pours into a glass", "a glass falls and shatters",
           "ice melts on a hot pan"]


def source(tmp_path, prompts=PROMPTS):
    f = tmp_path / "prompts.txt"
    f.write_text("\n".join(prompts) + "\n")
    return load_source(str(f))


class ConstScorer(FakeScorer):
    def __init__(self):
        super().__init__([])

    def score(self, video, prompt):
        from phyt2v.roles import Scores

        return Scores(sa=0.5, pc=0.5)


def failing_build(monkeypatch, error: BaseException) -> list[str]:
    """``registry.build`` raises ``error`` for the generator (a load that fails); returns the roles it was asked."""
    asked: list[str] = []

    def build(role, config, **kw):
        asked.append(role)
        raise error

    monkeypatch.setattr(registry, "build", build)
    return asked


def refiner_without_generator(cfg):
    return Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=ConstScorer())


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)"),
                                   ImportError("No module named 'diffusers' (injected)")])
def test_a_load_failure_stops_the_batch_after_the_first_prompt(tmp_path, monkeypatch, error):
    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2})
    asked = failing_build(monkeypatch, error)
    b = Batch(source(tmp_path), cfg, out=tmp_path / "out", refiner=refiner_without_generator(cfg), concurrency=1)
    with pytest.raises(LoadError, match=f"load generator failed: {type(error).__name__}: ") as info:
        b.run()
    assert "PHYT2V_DEBUG" in str(info.value)
    assert asked == ["generator"]  # the batch stopped at the first prompt: no second attempt to load
    runs = [p for p in (b.dir / "runs").iterdir()]
    assert len(runs) == 1
    rec = json.loads((runs[0] / "run.json").read_text())
    assert rec["status"] == "failed" and rec["error"]["step"] == "load generator"
    assert rec["error"]["kind"] == "LoadError"
    assert not (b.dir / "results.jsonl").exists()  # no prompt counted as failed: a rerun redoes them all


def test_a_backend_error_raised_while_loading_is_a_load_error(tmp_path, monkeypatch):
    from phyt2v.errors import BackendError

    cfg = load_config(loop={"max_rounds": 2})
    failing_build(monkeypatch, BackendError("generator model path not found: /nowhere (injected)"))
    b = Batch(source(tmp_path), cfg, out=tmp_path / "out", refiner=refiner_without_generator(cfg), concurrency=1)
    with pytest.raises(LoadError, match=r"^generator model path not found: /nowhere \(injected\)$"):
        b.run()


def test_a_config_error_at_load_stops_the_batch_stays_a_config_error_and_leaves_no_run_folder(tmp_path, monkeypatch):
    cfg = load_config(loop={"max_rounds": 2})
    asked = failing_build(monkeypatch, ConfigError("generator.compile: no repeated blocks (injected)"))
    b = Batch(source(tmp_path), cfg, out=tmp_path / "out", refiner=refiner_without_generator(cfg), concurrency=1)
    with pytest.raises(ConfigError) as info:
        b.run()
    assert not isinstance(info.value, LoadError) and asked == ["generator"]
    assert not any((b.dir / "runs").iterdir())  # nothing was done: no failed run folder left behind


def test_a_prompt_whose_llm_reply_never_parses_fails_alone_and_the_batch_goes_on(tmp_path):
    good = physics_llm()

    def answer(messages):
        text = " ".join(m["content"] for m in messages)
        if "water pours" in text:
            return "I would rather not answer in JSON."
        return good.script(messages)

    cfg = load_config(loop={"max_rounds": 2, "min_rounds": 2, "parse_retries": 1})
    ref = Refiner(cfg, llm=ScriptedLLM(answer), generator=FakeGenerator(), captioner=FakeCaptioner(),
                  scorer=ConstScorer())
    s = Batch(source(tmp_path), cfg, out=tmp_path / "out", refiner=ref, concurrency=1).run()
    assert s.finished == 3 and len(s.failed) == 1
    bad = s.failed[0]
    assert bad["prompt"] == PROMPTS[1] and bad["error"]["kind"] == ParseError.__name__
    assert bad["error"]["step"] == "rules"


def test_the_batch_triages_by_error_type_not_by_step(tmp_path):
    """A LoadError raised outside a "load" step (a backend that reloads its weights lazily) stops the batch too."""

    class ReloadingGenerator(FakeGenerator):
        def generate(self, prompt, **kw):
            raise LoadError("reloading the parked generator failed: weights file gone (injected)")

    cfg = load_config(loop={"max_rounds": 2})
    gen = ReloadingGenerator()
    ref = Refiner(cfg, llm=physics_llm(), generator=gen, captioner=FakeCaptioner(), scorer=ConstScorer())
    b = Batch(source(tmp_path), cfg, out=tmp_path / "out", refiner=ref, concurrency=1)
    with pytest.raises(LoadError, match="weights file gone"):
        b.run()
    assert len(list((b.dir / "runs").iterdir())) == 1


# ---------------------------------------------------------------- a dead LLM endpoint

def openai_cfg(base_url: str, **loop):
    from llm_servers import TEST_KEY_ENV

    return load_config(llm={"backend": "openai", "base_url": base_url, "model": "test", "api_key_env": TEST_KEY_ENV,
                            "max_retries": 0, "timeout_s": 2.0, "backoff_s": 0.01},
                       loop={"max_rounds": 1, "min_rounds": 1, **loop})


def openai_batch(tmp_path, cfg, prompts, concurrency=1):
    ref = Refiner(cfg, generator=FakeGenerator(), captioner=FakeCaptioner(), scorer=ConstScorer())
    return Batch(source(tmp_path, prompts), cfg, out=tmp_path / "out", refiner=ref, concurrency=concurrency)


MANY = [f"prompt number {i}: a ball falls" for i in range(7)]


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize("endpoint", ["503", "refused"])
def test_a_dead_llm_endpoint_stops_the_batch_after_three_prompts_in_a_row(tmp_path, endpoint):
    from llm_servers import FaultyServer, fail

    from phyt2v.batch import folder as batchdir
    from phyt2v.errors import LLMError

    with FaultyServer([fail(503, "upstream down")]) as srv:
        url = srv.base_url if endpoint == "503" else closed_port_url()
        b = openai_batch(tmp_path, openai_cfg(url), MANY)
        with pytest.raises(LLMError) as info:
            b.run()
    msg = str(info.value)
    assert "failed every call of the last 3 prompts" in msg and "Finished prompts are kept" in msg
    assert "run the same command again to resume" in msg
    assert ("HTTP 503" if endpoint == "503" else "connection error") in msg and url in msg  # names the problem
    lines = batchdir.read_results(b.dir)
    assert [ln["prompt"] for ln in lines.values()] == MANY[:3]  # prompts 4..7 were never started
    assert all(ln["status"] == "failed" and ln["error"]["kind"] == "LLMError" for ln in lines.values())
    assert len(list((b.dir / "runs").iterdir())) == 3
    if endpoint == "503":
        assert srv.count == 3


def test_an_llm_answer_in_between_starts_the_count_again(tmp_path):
    from doubles import RULES
    from llm_servers import FaultyServer, fail, ok

    from phyt2v.batch import folder as batchdir
    from phyt2v.errors import LLMError

    down = fail(503, "upstream down")
    # one LLM call per prompt (rules; one round has no mismatch or refine): prompt 3 gets its answer
    with FaultyServer([down, down, ok(json.dumps(RULES)), down, down, down, down]) as srv:
        b = openai_batch(tmp_path, openai_cfg(srv.base_url), MANY)
        with pytest.raises(LLMError, match="last 3 prompts"):
            b.run()
    status = [ln["status"] for ln in batchdir.read_results(b.dir).values()]
    assert status == ["failed", "failed", "finished", "failed", "failed", "failed"]  # stopped before prompt 7


def test_a_prompt_that_got_an_answer_before_its_llm_failed_starts_the_count_again(tmp_path):
    """Round 1's mismatch fails after the rules were answered: the endpoint is not dead, the batch goes on."""
    from doubles import RULES
    from llm_servers import FaultyServer, fail, ok

    down = fail(503, "upstream down")
    script = [ok(json.dumps(RULES)), down] * 3 + [ok(json.dumps(RULES)), down]
    with FaultyServer(script) as srv:
        b = openai_batch(tmp_path, openai_cfg(srv.base_url, max_rounds=2, min_rounds=2), MANY[:4])
        s = b.run()
    assert len(s.failed) == 4 and all(ln["error"]["step"] == "mismatch" for ln in s.failed)


def test_a_dead_endpoint_stops_a_pipelined_batch_too(tmp_path):
    from llm_servers import FaultyServer, fail

    from phyt2v.batch import folder as batchdir
    from phyt2v.errors import LLMError

    prompts = [f"prompt number {i}: a ball falls" for i in range(12)]
    with FaultyServer([fail(503, "upstream down")]) as srv:
        b = openai_batch(tmp_path, openai_cfg(srv.base_url), prompts, concurrency=4)
        with pytest.raises(LLMError, match="last [0-9]+ prompts"):
            b.run()
    assert 3 <= len(batchdir.read_results(b.dir)) < len(prompts)
