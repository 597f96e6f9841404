"""OpenAI backend against misbehaving loopback servers: a body trickled one byte a second (the
per-read httpx timeout never fires; the request deadline must), a call budget that Retry-After
cannot stretch, and a 200 reply that is an HTML page instead of JSON."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
from llm_servers import TEST_KEY_ENV, FaultyServer, fail, ok, openai_llm, page, trickle

from phyt2v.config import Config, LLMConfig, load_config
from phyt2v.errors import LLMError
from phyt2v.llms.openai_llm import OpenAILLM
from phyt2v.loop import Refiner
from phyt2v.loop.llm_steps import extract_rules
from phyt2v.store.record import CallLog

KEY_ENV = TEST_KEY_ENV
MSGS = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


make = partial(openai_llm, max_retries=1)


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "phyt2v-llm-request" and t.is_alive()]


def test_a_trickling_server_is_abandoned_at_the_deadline():
    # one byte a second: every socket read succeeds within the 1.5 s per-read timeout
    with FaultyServer([trickle("never finished")], hang_s=8.0) as srv:
        llm = make(srv, timeout_s=1.5, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"timeout after 1.5s after 2 attempts") as ei:
            llm.complete(MSGS)
        elapsed = time.monotonic() - t0
        assert srv.count == 2 and llm.abandoned == 2
        # the abandoned requests' client was closed: their worker threads end at their next read
        deadline = time.monotonic() + 3.0
        while workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not workers()
    assert elapsed < 4.5, elapsed  # 2 x 1.5 s + backoff, not the server's pace
    assert srv.base_url in str(ei.value) and "\n" not in str(ei.value)


def test_after_an_abandoned_request_the_next_one_works():
    with FaultyServer([trickle("slow"), ok("fast")], hang_s=8.0) as srv:
        llm = make(srv, timeout_s=1.5, max_retries=1)
        t0 = time.monotonic()
        assert llm.complete(MSGS) == "fast"
        assert time.monotonic() - t0 < 3.0
        assert srv.count == 2 and llm.abandoned == 1


def test_enhance_on_a_trickling_endpoint_fails_instead_of_hanging():
    with FaultyServer([trickle("{}")], hang_s=8.0) as srv:
        cfg = load_config("smoke", overrides=["llm.backend=openai", f"llm.base_url={srv.base_url}",
                                               f"llm.api_key_env={KEY_ENV}", "llm.timeout_s=1",
                                               "llm.max_retries=0"])
        t0 = time.monotonic()
        with pytest.raises(LLMError, match="timeout after 1s after 1 attempt"):
            Refiner(cfg).enhance("a rubber ball is dropped onto a wooden floor")
        assert time.monotonic() - t0 < 3.5
        assert srv.count == 1


def test_retry_after_cannot_stretch_the_call_budget(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("phyt2v.llms.openai_llm.time.sleep", sleeps.append)
    with FaultyServer([fail(429, "slow down", retry_after="50")]) as srv:
        llm = make(srv, timeout_s=2.0, max_retries=3)
        with pytest.raises(LLMError, match=r"budget of one LLM call .* is spent") as ei:
            llm.complete(MSGS)
        assert srv.count == 1 and sleeps == []  # a 50 s wait does not fit in the 9.07 s budget
    assert "HTTP 429" in str(ei.value)
    assert llm.budget_s == pytest.approx(2.0 * 4 + 0.01 + 0.02 + 0.04 + 1.0)


def test_default_budget_for_a_dead_endpoint_is_about_two_minutes():
    with FaultyServer([ok()]) as srv:
        llm = OpenAILLM.from_config(Config(llm=LLMConfig(base_url=srv.base_url, model="m", api_key_env=KEY_ENV)))
    assert llm.timeout_s == 30 and llm.max_retries == 3
    assert 100 <= llm.budget_s <= 130  # 4 x 30 s + 1 + 2 + 4 s of backoff + 1 s grace


@pytest.mark.parametrize("ctype", ["text/html", "application/json"])
def test_a_200_html_page_is_a_transient_error_naming_the_endpoint(ctype):
    with FaultyServer([page(content_type=ctype), ok("fine")]) as srv:
        llm = make(srv)
        assert llm.complete(MSGS) == "fine"
        assert srv.count == 2
    with FaultyServer([page(content_type=ctype)]) as srv:
        with pytest.raises(LLMError) as ei:
            make(srv, max_retries=2).complete(MSGS)
        assert srv.count == 3
    msg = str(ei.value)
    assert "\n" not in msg and srv.base_url in msg and "3 attempts" in msg
    assert "not an OpenAI-compatible JSON response" in msg and "<html><body><h1>502 Bad Gateway" in msg
    assert "llm.base_url" in msg


def test_an_html_page_is_retried_as_a_provider_error_not_a_parse_error():
    with FaultyServer([page()]) as srv:
        llm = make(srv, max_retries=1)
        with pytest.raises(LLMError, match="not an OpenAI-compatible"):
            extract_rules(llm, "a ball falls", log=CallLog(None), retries=2)
        assert srv.count == 2  # max_retries + 1, never multiplied by the parse retries


def test_retry_delay_is_backoff_or_the_servers_retry_after_up_to_its_cap():
    from phyt2v.runtime.deadline import MAX_RETRY_AFTER_S, retry_delay

    assert [retry_delay(0.5, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(0.5, 1, "3") == 3.0 and retry_delay(0.5, 1, 3.0) == 3.0  # header text or a parsed number
    assert retry_delay(4.0, 2, "1") == 8.0  # the backoff when it is longer
    assert retry_delay(0.5, 1, "3600") == MAX_RETRY_AFTER_S == 60.0
    assert retry_delay(0.5, 1, "Wed, 21 Oct 2026 07:28:00 GMT") == 0.5 and retry_delay(0.5, 1, "") == 0.5
