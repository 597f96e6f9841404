"""The local LLM by default: the ``auto`` choice table, and the captioner's VLM answering the LLM
steps from the same loaded copy (tiny Qwen2-VL, CPU, offline)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry
from phyt2v.config import Config, load_config  # noqa: E402
from phyt2v.errors import ParseError  # noqa: E402
from phyt2v.llms import AutoLLM  # noqa: E402
from phyt2v.loop import llm_steps as steps
from phyt2v.runtime.llm_choice import choose_llm  # noqa: E402
from phyt2v.schemas import Rules  # noqa: E402
from phyt2v.store.record import CallLog  # noqa: E402
from phyt2v.vlm import runtime as vlm  # noqa: E402

KEY = "PHYT2V_TEST_CHOICE_KEY"
VLM7 = "Qwen/Qwen2.5-VL-7B-Instruct"


def cfg(**llm) -> Config:
    return Config(llm={"api_key_env": KEY, **llm}, captioner={"model": VLM7})


@pytest.mark.parametrize("config, cuda, env, backend, model, why", [
    (cfg(), True, {KEY: "sk-x"}, "openai", None, f"${KEY} is set"),
    (cfg(), False, {KEY: "sk-x"}, "openai", None, f"${KEY} is set"),
    (cfg(base_url="http://127.0.0.1:9/v1"), True, {}, "openai", None, "llm.base_url is set"),
    (cfg(), True, {}, "vlm", VLM7, "captioner's VLM"),
    (cfg(), False, {}, "embedded", None, "no CUDA GPU"),
    (cfg(model="Qwen/Qwen2.5-7B-Instruct"), True, {}, "transformers", "Qwen/Qwen2.5-7B-Instruct", "transformers"),
    (cfg(model="/m/x.gguf"), True, {}, "embedded", "/m/x.gguf", "GGUF"),
    (cfg(backend="embedded"), True, {KEY: "sk-x"}, "embedded", None, "asked for"),
    (cfg(backend="vlm"), False, {}, "vlm", VLM7, "asked for"),
    (Config(llm={"api_key_env": KEY}, captioner={"backend": "other"}), True, {}, "embedded", None, "not a VLM"),
])
def test_auto_choice_table(config, cuda, env, backend, model, why):
    got = choose_llm(config, cuda=cuda, env=env)
    assert got[:2] == (backend, model)
    assert why in got[2]


def test_auto_llm_uses_the_choice_on_this_machine(monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    import torch

    assert AutoLLM.choose(cfg()) == ("vlm" if torch.cuda.is_available() else "embedded")
    monkeypatch.setenv(KEY, "sk-x")
    assert AutoLLM.choose(cfg()) == "openai"


@pytest.fixture(scope="module")
def shared():
    """The llm role (backend vlm) and the captioner built from one config, after a fresh VLM cache."""
    vlm.clear_cache()
    registry.clear_cache()
    config = load_config("smoke", llm={"backend": "vlm", "max_tokens": 48, "temperature": 0.0})
    before = registry.LOADS["captioner"] + registry.LOADS["llm"]
    llm = registry.build("llm", config, cache=False)
    cap = registry.build("captioner", config, cache=False)
    return llm, cap, registry.LOADS["captioner"] + registry.LOADS["llm"] - before


def test_llm_and_captioner_share_one_load(shared):
    llm, cap, loads = shared
    assert loads == 1
    assert llm.model is cap.model
    assert llm.supports_schema is False and llm.backend == "vlm"


def test_shared_vlm_answers_a_real_llm_step(shared):
    llm, _, _ = shared
    log = CallLog(None)
    try:
        rules = steps.extract_rules(llm, "a rubber ball is dropped onto a wooden floor", log=log, retries=1)
    except ParseError as e:  # a random-weight model rarely writes JSON: the ladder must end cleanly
        assert e.raw is not None and "objects" in e.expected
        assert log.count == 2  # the first answer and one re-ask that showed the parse error
    else:
        assert isinstance(rules, Rules) and log.count >= 1
    assert llm.last_new_tokens > 0
