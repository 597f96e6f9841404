"""OpenAI backend against a real llama.cpp HTTP server (xllamacpp + SmolLM2-135M GGUF).

SmolLM2 is weak: these tests assert structure, never wording.
"""

from __future__ import annotations

import json

import pytest
from llm_servers import smollm_server

from phyt2v import registry, roles
from phyt2v.config import Config, LLMConfig
from phyt2v.llms.openai_llm import OpenAILLM

KEY_ENV = "PHYT2V_TEST_LLM_KEY"
SCHEMA = {"title": "Rules", "type": "object", "required": ["objects", "rule"],
          "properties": {"objects": {"type": "array", "maxItems": 3,
                                     "items": {"type": "string", "maxLength": 30}},
                         "rule": {"type": "string", "maxLength": 120}}}
ASK = [{"role": "system", "content": "You list objects and one physics rule as JSON."},
       {"role": "user", "content": "A glass ball falls onto a wooden table."}]


@pytest.fixture(scope="module")
def base_url():
    with smollm_server() as url:
        yield url


@pytest.fixture
def llm(base_url, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    cfg = Config(llm=LLMConfig(backend="openai", base_url=base_url, api_key_env=KEY_ENV,
                               temperature=0.0, max_tokens=64, timeout_s=60, max_retries=1,
                               options={"repeat_penalty": 1.1}))
    return registry.build("llm", cfg)


def test_plain_reply_is_nonempty_text(llm):
    assert isinstance(llm, OpenAILLM) and isinstance(llm, roles.LLM) and llm.supports_schema
    out = llm.complete([{"role": "user", "content": "Name one fruit."}], max_tokens=24)
    assert isinstance(out, str) and out.strip()


def test_served_model_is_discovered(llm):
    assert llm.model_id not in ("", "default")  # asked the server via /v1/models


def test_schema_reply_parses_with_required_keys(llm):
    out = llm.complete(ASK, schema=SCHEMA, max_tokens=200)
    data = json.loads(out)
    assert set(SCHEMA["required"]) <= set(data)
    assert isinstance(data["objects"], list) and all(isinstance(o, str) for o in data["objects"])
    assert isinstance(data["rule"], str)
    assert llm.supports_schema  # the real server accepted json_schema: no fallback happened


def test_same_seed_greedy_is_repeatable(llm):
    msgs = [{"role": "user", "content": "Count to three."}]
    assert llm.complete(msgs, max_tokens=16) == llm.complete(msgs, max_tokens=16)


def test_max_tokens_limits_the_reply(llm):
    short = llm.complete([{"role": "user", "content": "Write a long story about a ball."}], max_tokens=5)
    assert 0 < len(short.split()) <= 8
