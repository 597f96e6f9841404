"""Transformers backend on a tiny random-weight Qwen2 saved with save_pretrained and loaded by path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from llm_servers import make_tiny_causal_lm  # noqa: E402

from phyt2v import registry, roles  # noqa: E402
from phyt2v.config import Config, LLMConfig  # noqa: E402
from phyt2v.errors import BackendError, ConfigError  # noqa: E402
from phyt2v.llms.transformers_llm import TransformersLLM  # noqa: E402

MSGS = [{"role": "system", "content": "the rule of physics"},
        {"role": "user", "content": "a ball falls on the table"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def greedy(model_dir):
    before = registry.LOADS["llm"]
    cfg = Config(llm=LLMConfig(backend="transformers", model=str(model_dir), temperature=0.0,
                               max_tokens=16, device="auto", dtype="auto"))
    llm = registry.build("llm", cfg)
    return llm, registry.LOADS["llm"] - before


def test_loads_by_path_on_cpu_in_fp32(greedy, model_dir):
    import torch

    llm, loads = greedy
    assert isinstance(llm, TransformersLLM) and isinstance(llm, roles.LLM)
    assert llm.backend == "transformers"
    assert llm.model_id == str(model_dir) and loads == 1
    assert llm.supports_schema is False
    assert llm.device == "cpu" and next(llm.model.parameters()).dtype == torch.float32


def test_greedy_reply_is_text_and_deterministic(greedy):
    llm = greedy[0]
    a = llm.complete(MSGS)
    assert isinstance(a, str) and a and llm.last_new_tokens == 16  # byte soup, no specials
    assert "<|im_start|>" not in a and "<|im_end|>" not in a
    assert llm.complete(MSGS) == a
    assert llm.complete(MSGS, schema={"type": "object"}) == a  # schema is ignored, not an error


def test_max_tokens_bounds_new_tokens(greedy):
    llm = greedy[0]
    llm.complete(MSGS, max_tokens=3)
    assert llm.last_new_tokens == 3


def test_chat_template_is_used(greedy):
    prompt = greedy[0]._prompt(MSGS)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")


def test_sampling_is_seeded(model_dir):
    kw = dict(model=str(model_dir), device="cpu", temperature=1.5, max_tokens=12)
    a = TransformersLLM(seed=3, **kw)
    first = a.complete(MSGS)
    assert a.complete(MSGS) == first  # reseeded each call
    outs = {TransformersLLM(seed=s, **kw).complete(MSGS) for s in (4, 5, 6)}
    assert len(outs | {first}) > 1  # different seeds sample differently


def test_missing_model_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="cannot load transformers model"):
        TransformersLLM(model=str(tmp_path / "no-such-model"), device="cpu")


def test_model_is_required():
    with pytest.raises(ConfigError, match="llm.model is required"):
        TransformersLLM(model=None)


def test_cuda_without_cuda_is_a_config_error(model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        TransformersLLM(model=str(model_dir), device="cuda")


def test_finish_reason_is_length_without_an_end_token_and_stop_with_one(greedy):
    import torch

    llm = greedy[0]
    cut = llm.complete(MSGS, max_tokens=3)
    assert cut.finish_reason == "length" and llm.last_finish_reason == "length"
    ids = llm.tokenizer(llm._prompt(MSGS), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        first = int(llm.model(**ids).logits[0, -1].argmax())
    saved = llm.model.generation_config.eos_token_id
    llm.model.generation_config.eos_token_id = first  # the first greedy token now ends the reply
    try:
        done = llm.complete(MSGS, max_tokens=1)  # all of max_tokens used, but it ended on the end token
    finally:
        llm.model.generation_config.eos_token_id = saved
    assert llm.last_new_tokens == 1 and done.finish_reason == "stop"
