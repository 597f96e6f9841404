"""OpenAI backend against a scripted faulty HTTP server: retries, fallbacks, secrets."""

from __future__ import annotations

import json
import logging
import time
import traceback

import pytest
from llm_servers import HANG, RESET, TEST_KEY_ENV, FaultyServer, fail, ok, openai_llm

from phyt2v.config import Config, LLMConfig
from phyt2v.errors import ConfigError, LLMError
from phyt2v.llms import AutoLLM
from phyt2v.llms.openai_llm import LOCAL_DUMMY_KEY, OpenAILLM

KEY_ENV = TEST_KEY_ENV
SECRET = "sk-test-SECRET123"
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
SCHEMA = {"title": "Rules", "type": "object", "required": ["objects", "rules"],
          "properties": {"objects": {"type": "array", "items": {"type": "string"}},
                         "rules": {"type": "array", "items": {"type": "string"}}}}


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


make = openai_llm


def test_429_then_success_takes_exactly_two_requests():
    with FaultyServer([fail(429, "slow down"), ok("hello")]) as srv:
        assert make(srv).complete(MSGS) == "hello"
        assert srv.count == 2


def test_500_every_time_raises_after_max_retries_plus_one():
    with FaultyServer([fail(500, "boom")]) as srv:
        llm = make(srv, max_retries=2)
        t0 = time.monotonic()
        with pytest.raises(LLMError) as ei:
            llm.complete(MSGS)
        assert srv.count == 3
        assert time.monotonic() - t0 >= 0.01 + 0.02  # backoff doubles: 0.01, 0.02
    msg = str(ei.value)
    assert "\n" not in msg
    assert srv.base_url in msg and "HTTP 500" in msg and "3 attempts" in msg


def test_backoff_doubles(monkeypatch):
    sleeps = []
    monkeypatch.setattr("phyt2v.llms.openai_llm.time.sleep", sleeps.append)
    with FaultyServer([fail(503)]) as srv:
        with pytest.raises(LLMError):
            make(srv, max_retries=3, backoff_s=0.5).complete(MSGS)
        assert srv.count == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_timeout_is_retried_then_reported():
    with FaultyServer([HANG], hang_s=5.0) as srv:
        t0 = time.monotonic()
        with pytest.raises(LLMError, match="timeout after 0.3s after 2 attempts"):
            make(srv, timeout_s=0.3, max_retries=1).complete(MSGS)
        assert srv.count == 2
        assert time.monotonic() - t0 < 4.0  # the client gave up, the server did not answer


def test_connection_reset_is_retried():
    with FaultyServer([RESET, ok("after reset")]) as srv:
        assert make(srv).complete(MSGS) == "after reset"
        assert srv.count == 2
    with FaultyServer([RESET]) as srv:
        with pytest.raises(LLMError, match="connection error"):
            make(srv, max_retries=1).complete(MSGS)
        assert srv.count == 2


def test_server_down_is_a_connection_error():
    with FaultyServer([ok()]) as srv:
        url = srv.base_url
    llm = OpenAILLM(model="m", base_url=url, api_key_env=KEY_ENV, max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMError, match="connection error") as ei:
        llm.complete(MSGS)
    assert url in str(ei.value)


@pytest.mark.parametrize("code", [400, 401, 404, 422])
def test_other_4xx_are_not_retried(code):
    with FaultyServer([fail(code, "nope"), ok("never")]) as srv:
        with pytest.raises(LLMError, match=f"HTTP {code}: nope after 1 attempt;"):
            make(srv).complete(MSGS)
        assert srv.count == 1


def test_rejected_response_format_falls_back_once_and_is_remembered(caplog):
    loose = {**SCHEMA, "required": ["objects"]}  # optional field: not strict-compatible
    script = [fail(400, "response_format type must be 'text' or 'json_object'"), ok('{"objects": []}')]
    with FaultyServer(script) as srv, caplog.at_level(logging.WARNING, logger="phyt2v"):
        llm = make(srv)
        assert llm.supports_schema
        assert llm.complete(MSGS, schema=loose) == '{"objects": []}'
        assert llm.complete(MSGS, schema=loose) == '{"objects": []}'
        sent = [r["json"] for r in srv.requests]
    assert len(sent) == 3
    assert sent[0]["response_format"]["type"] == "json_schema"
    assert "strict" not in sent[0]["response_format"]["json_schema"]
    assert "response_format" not in sent[1] and "response_format" not in sent[2]
    assert not llm.supports_schema
    assert sum("plain text" in r.getMessage() for r in caplog.records) == 1


def test_strict_schema_steps_down_to_loose_then_plain():
    rej = fail(400, "Invalid schema for response_format 'Rules'")
    with FaultyServer([rej, rej, ok("{}")]) as srv:
        assert make(srv).complete(MSGS, schema=SCHEMA) == "{}"
        sent = [r["json"] for r in srv.requests]
    js0 = sent[0]["response_format"]["json_schema"]
    assert js0["strict"] is True and js0["name"] == "Rules"
    assert js0["schema"]["additionalProperties"] is False
    assert "strict" not in sent[1]["response_format"]["json_schema"]
    assert "response_format" not in sent[2]


def test_max_tokens_renamed_when_endpoint_asks():
    script = [fail(400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."), ok("x")]
    with FaultyServer(script) as srv:
        assert make(srv).complete(MSGS, max_tokens=77) == "x"
        second = srv.requests[1]["json"]
    assert second["max_completion_tokens"] == 77 and "max_tokens" not in second


def test_request_carries_settings_and_env_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FaultyServer([ok("fine")]) as srv:
        llm = make(srv, temperature=0.7, seed=5, max_tokens=99, options={"top_p": 0.9})
        assert llm.complete(MSGS, schema=SCHEMA) == "fine"
        req = srv.requests[0]
    body = req["json"]
    assert body["model"] == "test-model" and body["messages"] == MSGS
    assert body["temperature"] == 0.7 and body["seed"] == 5 and body["max_tokens"] == 99
    assert body["top_p"] == 0.9
    assert req["headers"]["authorization"] == f"Bearer {SECRET}"
    assert req["path"] == "/v1/chat/completions"


def test_no_key_with_base_url_uses_dummy_key():
    with FaultyServer([ok("x")]) as srv:
        make(srv).complete(MSGS)
        assert srv.requests[0]["headers"]["authorization"] == f"Bearer {LOCAL_DUMMY_KEY}"


def test_no_key_and_no_base_url_is_a_config_error():
    with pytest.raises(ConfigError, match=KEY_ENV):
        OpenAILLM(model="gpt-4o-mini", api_key_env=KEY_ENV)


def test_secret_never_appears_in_errors_or_repr(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FaultyServer([fail(401, f"Incorrect API key provided: {SECRET}")]) as srv:
        llm = make(srv)
        with pytest.raises(LLMError) as e401:
            llm.complete(MSGS)
    with FaultyServer([fail(500, f"internal: {SECRET}")]) as srv:
        with pytest.raises(LLMError) as e500:
            make(srv, max_retries=1).complete(MSGS)
    for ei in (e401, e500):
        text = str(ei.value) + repr(ei.value) + "".join(traceback.format_exception(ei.value))
        assert "SECRET123" not in text
    assert KEY_ENV in str(e401.value)  # says where to fix the key
    assert "SECRET123" not in repr(llm) + str(vars(llm))


def test_empty_reply_is_empty_string():
    with FaultyServer([ok(None)]) as srv:
        assert make(srv).complete(MSGS) == ""
    with FaultyServer([ok("")]) as srv:
        assert make(srv).complete(MSGS) == ""


def test_body_without_choices_is_an_llm_error():
    with FaultyServer([("json", {"error": {"message": "model not loaded"}})]) as srv:
        with pytest.raises(LLMError, match="no choices"):
            make(srv).complete(MSGS)
        assert srv.count == 1


def test_model_defaults_to_first_served_model():
    with FaultyServer([ok("x")]) as srv:
        llm = OpenAILLM(base_url=srv.base_url, api_key_env=KEY_ENV)
        assert llm.model_id == "test"
        llm.complete(MSGS)
        assert json.dumps(srv.requests[0]["json"]["model"]) == '"test"'


def test_auto_and_from_config_pick_openai(monkeypatch):
    with FaultyServer([ok("via auto")]) as srv:
        cfg = Config(llm=LLMConfig(base_url=srv.base_url, model="m", api_key_env=KEY_ENV,
                                   backoff_s=0.01, max_retries=4, timeout_s=3))
        llm = AutoLLM.from_config(cfg)
        assert isinstance(llm, OpenAILLM) and llm.backend == "openai"
        assert (llm.max_retries, llm.timeout_s, llm.model_id) == (4, 3, "m")
        assert llm.complete(MSGS) == "via auto"
    monkeypatch.setenv(KEY_ENV, SECRET)
    assert AutoLLM.choose(Config(llm=LLMConfig(api_key_env=KEY_ENV))) == "openai"
    monkeypatch.delenv(KEY_ENV)
    assert AutoLLM.choose(Config(llm=LLMConfig(api_key_env=KEY_ENV))) == "embedded"


def test_bad_messages_are_rejected_before_any_request():
    from phyt2v.errors import InputError

    with FaultyServer([ok()]) as srv:
        with pytest.raises(InputError, match="messages"):
            make(srv).complete([{"role": "robot", "content": "x"}])
        assert srv.count == 0
