"""A reply cut at max_tokens (finish_reason "length") is never accepted by an LLM step: one re-ask
for a shorter answer, then a ParseError naming llm.max_tokens. And `enhance` keeps its rewrite
within the video model's token budget (re-ask once with the measured length, then warn)."""

from __future__ import annotations

import json

import pytest
from doubles import RULES, FakeGenerator, ScriptedLLM, refinement
from llm_servers import FaultyServer, cut, ok

from phyt2v.config import load_config
from phyt2v.errors import ParseError
from phyt2v.llms.openai_llm import OpenAILLM
from phyt2v.loop import Refiner
from phyt2v.loop.llm_steps import TOKENS_PER_WORD, extract_rules, run_step
from phyt2v.schemas import Refinement
from phyt2v.store.record import CallLog

KEY_ENV = "PHYT2V_TEST_LLM_KEY"
PROMPT = "a rubber ball is dropped onto a wooden floor"
LONG = " ".join(["the ball falls and bounces lower each time on the hard wooden floor"] * 28)  # 364 words
HALF_JSON = json.dumps({"principle": "energy is lost at each bounce", "prompt": LONG})[:-40]  # no closing quote
VALUES = {"prompt": PROMPT, "objects": "ball", "rules": "- gravity", "expected_outcome": "it bounces",
          "budget_tokens": 226, "budget_words": 161}


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def openai_llm(srv: FaultyServer) -> OpenAILLM:
    return OpenAILLM(model="m", base_url=srv.base_url, api_key_env=KEY_ENV, max_tokens=640, backoff_s=0.01)


def test_openai_reply_carries_finish_reason():
    with FaultyServer([cut("half a sent"), ok("whole")]) as srv:
        llm = openai_llm(srv)
        a, b = llm.complete([{"role": "user", "content": "x"}]), llm.complete([{"role": "user", "content": "x"}])
    assert (a, a.finish_reason) == ("half a sent", "length")
    assert (b, b.finish_reason) == ("whole", "stop") and llm.last_finish_reason == "stop"


def test_a_cut_reply_that_would_parse_is_reasked_shorter_then_fails_naming_max_tokens():
    with FaultyServer([cut(HALF_JSON)]) as srv:
        llm = openai_llm(srv)
        with pytest.raises(ParseError) as ei:
            run_step(llm, "enhance", Refinement, VALUES, log=CallLog(None), retries=2)
        assert srv.count == 2  # one re-ask, not every parse retry
        reask = srv.requests[1]["json"]["messages"][-1]["content"]
    assert "SHORTER" in reask and "length limit" in reask
    msg = str(ei.value)
    assert "llm.max_tokens = 640" in msg and "--set llm.max_tokens=1280" in msg and "\n" not in msg
    assert ei.value.raw == HALF_JSON and ei.value.step == "enhance"


def test_a_cut_reply_then_a_whole_one_is_accepted():
    with FaultyServer([cut(HALF_JSON), ok(refinement("a short prompt"))]) as srv:
        ref = run_step(openai_llm(srv), "enhance", Refinement, VALUES, log=CallLog(None), retries=2)
        assert srv.count == 2
    assert ref.prompt == "a short prompt"


def test_no_parse_retries_left_means_the_cut_fails_at_once():
    with FaultyServer([cut(HALF_JSON)]) as srv:
        with pytest.raises(ParseError, match="no retry was left"):
            run_step(openai_llm(srv), "enhance", Refinement, VALUES, log=CallLog(None), retries=0)
        assert srv.count == 1


def test_plugin_backends_report_through_last_finish_reason_or_not_at_all():
    class Plugin(ScriptedLLM):
        last_finish_reason = "length"

    with pytest.raises(ParseError, match="cut off"):
        extract_rules(Plugin([json.dumps(RULES)] * 3), PROMPT, log=CallLog(None), retries=2)
    # a plain str and no attribute: unknown, accepted as before
    assert extract_rules(ScriptedLLM([json.dumps(RULES)]), PROMPT, log=CallLog(None)).objects


def enhancer(*prompts: str) -> ScriptedLLM:
    return ScriptedLLM([json.dumps(RULES)] + [refinement(p) for p in prompts])


def test_enhance_reasks_once_with_the_measured_length_when_over_budget():
    llm = enhancer(LONG, "a short physical prompt")
    events = []
    refiner = Refiner(load_config("smoke"), llm=llm, on_event=events.append)
    budget = refiner.token_budget()  # the tiny CogVideoX's own limit, read from its files
    res = refiner.enhance(PROMPT)
    assert res.refinement.prompt == "a short physical prompt"
    assert len(llm.calls) == 3
    estimate = round(len(LONG.split()) * TOKENS_PER_WORD)
    note = llm.calls[2][-1]["content"]
    assert f"about {estimate} tokens, over the {budget}-token limit" in note
    assert not [e for e in events if e.kind == "warning"]


def test_enhance_warns_when_the_second_rewrite_is_still_over_budget():
    events = []
    refiner = Refiner(load_config("smoke"), llm=enhancer(LONG, LONG), on_event=events.append)
    budget = refiner.token_budget()
    res = refiner.enhance(PROMPT)
    assert res.refinement.prompt == LONG
    warnings = [e.data["message"] for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and f"{budget}-token budget" in warnings[0]


def test_enhance_counts_with_a_loaded_generator():
    words = " ".join(["ball"] * 35)  # 35 generator tokens (<= 40) but ~49 by the word estimate
    llm = enhancer(words)
    res = Refiner(load_config("smoke"), llm=llm, generator=FakeGenerator()).enhance(PROMPT)
    assert res.refinement.prompt == words and len(llm.calls) == 2
    llm = enhancer(" ".join(["ball"] * 41), "ball falls")
    assert Refiner(load_config("smoke"), llm=llm, generator=FakeGenerator()).enhance(PROMPT).refinement.prompt \
        == "ball falls"
