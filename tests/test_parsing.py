"""The parse ladder on LLM junk: fences, prose, trailing commas, truncation, missing fields,
wrong types, empty replies; retries that show the model its error; provider errors not retried."""

import json

import pytest
from doubles import RULES, ScriptedLLM

from phyt2v.errors import LLMError, ParseError
from phyt2v.loop.llm_steps import extract_rules, render, run_step
from phyt2v.loop.parsing import ReplyError, extract_json, parse_reply
from phyt2v.schemas import Mismatch, Rules
from phyt2v.store.record import CallLog

GOOD = json.dumps(RULES)


@pytest.mark.parametrize("reply", [
    GOOD,
    f"```json\n{GOOD}\n```",
    f"Sure! Here are the rules:\n```\n{GOOD}\n```\nHope this helps.",
    f"Here you go: {GOOD} -- let me know.",
    GOOD[:-1] + ",}",  # trailing comma
    '{"objects": ["ball", "floor",], "rules": ["gravity",], "expected_outcome": "it bounces",}',
])
def test_ladder_reads_common_junk(reply):
    r = parse_reply(reply, Rules)
    assert r.objects and r.rules and r.expected_outcome


def test_truncated_json_is_closed():
    cut = '{"objects": ["ball", "floor"], "rules": ["gravity pulls the ball", "the ball bou'
    with pytest.raises(ReplyError, match="expected_outcome.*missing"):
        parse_reply(cut, Rules)  # closed, parsed, then the missing field is named
    data = extract_json(cut)
    assert data["rules"] == ["gravity pulls the ball", "the ball bou"]
    m = parse_reply('{"reasoning": "the ball floats", "mismatches": ["no bounce"', Mismatch)
    assert m.mismatches == ["no bounce"]


def test_wrong_types_are_coerced_or_named():
    r = parse_reply('{"objects": "ball", "rules": [{"rule": "gravity"}], "expected_outcome": ["falls", "rests"]}',
                    Rules)
    assert r.objects == ["ball"] and r.rules == ["gravity"] and r.expected_outcome == "falls rests"
    with pytest.raises(ReplyError, match="objects"):
        parse_reply('{"objects": 3, "rules": [], "expected_outcome": "x"}', Rules)
    with pytest.raises(ReplyError, match="not an object"):
        parse_reply('["ball"]', Rules)


@pytest.mark.parametrize("reply,msg", [("", "empty"), ("   ", "empty"), ("no json here", "no JSON")])
def test_empty_and_prose_only(reply, msg):
    with pytest.raises(ReplyError, match=msg):
        parse_reply(reply, Rules)


def test_retry_shows_the_model_its_error():
    llm = ScriptedLLM(['{"objects": ["ball"]}', GOOD])
    log = CallLog(None)
    r = extract_rules(llm, "a ball falls", log=log, retries=2)
    assert r.objects == RULES["objects"] and len(llm.calls) == 2
    second = llm.calls[1]
    assert second[-2] == {"role": "assistant", "content": '{"objects": ["ball"]}'}
    assert "could not be used" in second[-1]["content"] and "'rules': missing" in second[-1]["content"]
    assert log.count == 2


def test_parse_error_after_bounded_retries_carries_raw_and_fields():
    llm = ScriptedLLM(["nope", "still nope", "no"])
    with pytest.raises(ParseError) as ei:
        extract_rules(llm, "a ball falls", log=CallLog(None), retries=2)
    assert len(llm.calls) == 3
    e = ei.value
    assert e.raw == "no" and e.expected == ["objects", "rules", "expected_outcome"] and e.step == "rules"
    assert "after 3 attempts" in str(e)


def test_provider_errors_are_not_retried_as_parse_errors():
    llm = ScriptedLLM([LLMError("endpoint down"), GOOD])
    with pytest.raises(LLMError):
        extract_rules(llm, "a ball falls", log=CallLog(None), retries=3)
    assert len(llm.calls) == 1


def test_schema_passed_when_backend_supports_it():
    seen = {}

    class Constrained(ScriptedLLM):
        supports_schema = True

        def complete(self, messages, *, schema=None, max_tokens=None):
            seen["schema"] = schema
            return super().complete(messages, schema=schema, max_tokens=max_tokens)

    run_step(Constrained([GOOD]), "rules", Rules, {"prompt": "x"}, log=CallLog(None))
    assert set(seen["schema"]["required"]) == {"objects", "rules", "expected_outcome"}


def test_templates_include_field_descriptions():
    msgs = render("rules", prompt="a ball falls", fields="FIELDS-HERE")
    assert msgs[0]["role"] == "system" and "a ball falls" in msgs[1]["content"]
    assert "FIELDS-HERE" in msgs[1]["content"]
    with pytest.raises(KeyError, match="needs a value"):
        render("rules", prompt="x")


def test_long_lists_are_trimmed_and_bounded_in_the_schema():
    many = json.dumps({"objects": ["ball"], "rules": [f"rule {i}" for i in range(20)], "expected_outcome": "x"})
    assert len(parse_reply(many, Rules).rules) == 8
    assert Rules.model_json_schema()["properties"]["rules"]["maxItems"] == 8


def test_long_strings_are_trimmed_and_bounded_in_the_schema():
    r = parse_reply(json.dumps({"objects": ["ball " * 100], "rules": ["g"], "expected_outcome": "x" * 5000}), Rules)
    assert len(r.objects[0]) == 300 and len(r.expected_outcome) == 600
    props = Mismatch.model_json_schema()["properties"]
    assert props["reasoning"]["maxLength"] == 1000 and props["mismatches"]["items"]["maxLength"] == 300
