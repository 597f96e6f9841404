"""PhyGDPO's CoT prompt extension: the typed step's parse ladder on malformed replies (a scripted LLM),
the 100-word limit (re-ask, then trim), the 0.60 label, and `phyt2v enhance --method phygdpo` through the
real CLI (a scripted loopback OpenAI server for exact output, the embedded SmolLM2 for the real path)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from doubles import ScriptedLLM
from llm_servers import FaultyServer, ok

from phyt2v.errors import InputError, ParseError
from phyt2v.loop.enhancers import METHODS, phygdpo_enhance
from phyt2v.loop.llm_steps import physics_cot, trim_words
from phyt2v.loop.parsing import ReplyError, parse_reply
from phyt2v.schemas import PHYSICS_THRESHOLD, PhysicsCoT
from phyt2v.store.record import CallLog

PROMPT = "a rubber ball is dropped onto a wooden floor"
EXTENDED = "A rubber ball is dropped onto a wooden floor; gravity pulls it down and it bounces lower each time."


def cot(**over) -> dict:
    data = {"elements": ["rubber ball (elastic)", "wooden floor (rigid)", "gravity", "bounce"],
            "vision_check": "ball and floor are visible; gravity shows only through the motion",
            "physics_reasoning": "Gravity accelerates the ball down; the floor's normal force makes it rebound.",
            "physics_score": 0.82, "extended_prompt": EXTENDED}
    data.update(over)
    return data


def reply(**over) -> str:
    return json.dumps(cot(**over))


def without(field: str) -> str:
    data = cot()
    del data[field]
    return json.dumps(data)


def run(llm, retries=2):
    return phygdpo_enhance(llm, PROMPT, log=CallLog(None), retries=retries)


def feedback(llm: ScriptedLLM, k: int) -> str:
    """The user message of the k-th call (0-based): what the model was told."""
    return llm.calls[k][-1]["content"]


# ---------------------------------------------------------------- the parse ladder

def test_a_good_reply_is_one_call_and_the_prompt_names_every_stage():
    llm = ScriptedLLM([reply()])
    res = run(llm)
    assert res.extended_prompt == EXTENDED and res.physics_score == 0.82 and res.physical
    assert len(llm.calls) == 1
    asked = feedback(llm, 0)
    assert PROMPT in asked and "At most 100 words" in asked and "at least 0.60" in asked
    for field in PhysicsCoT.model_fields:
        assert f'"{field}"' in asked
    assert '"physics_score" (number)' in asked and '"elements" (list of strings)' in asked


def test_fenced_json_with_prose_around_it_is_read():
    # the braces in the prose make the outermost {...} slice invalid: only the fence gives the object
    llm = ScriptedLLM([f"I weighed {{gravity, bounce}} first.\n```json\n{reply(physics_score=0.4)}\n```\nDone."])
    res = run(llm)
    assert res.physics_score == 0.4 and not res.physical and len(llm.calls) == 1


def test_a_missing_field_is_reasked_naming_it():
    llm = ScriptedLLM([without("physics_reasoning"), reply()])
    res = run(llm)
    assert res.physics_reasoning.startswith("Gravity") and len(llm.calls) == 2
    assert "field 'physics_reasoning': missing" in feedback(llm, 1)


def test_a_score_outside_0_1_is_rejected_by_the_schema_not_clamped():
    with pytest.raises(ReplyError, match="physics_score"):
        parse_reply(reply(physics_score=1.7), PhysicsCoT)
    llm = ScriptedLLM([reply(physics_score=1.7), reply(physics_score=0.7)])
    res = run(llm)
    assert res.physics_score == 0.7 and len(llm.calls) == 2
    assert "field 'physics_score'" in feedback(llm, 1) and "less than or equal to 1" in feedback(llm, 1)


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_an_empty_or_missing_extended_prompt_goes_through_the_ladder(bad):
    first = without("extended_prompt") if bad is None else reply(extended_prompt=bad)
    llm = ScriptedLLM([first, reply()])
    assert run(llm).extended_prompt == EXTENDED
    assert "field 'extended_prompt'" in feedback(llm, 1)
    hopeless = ScriptedLLM([first] * 3)
    with pytest.raises(ParseError) as ei:
        run(hopeless)
    assert ei.value.step == "phygdpo" and "extended_prompt" in ei.value.expected


def test_hopeless_replies_raise_a_parse_error_naming_the_step():
    llm = ScriptedLLM(["I think the ball bounces.", "no JSON here either", "[1, 2, 3]"])
    with pytest.raises(ParseError) as ei:
        run(llm, retries=2)
    assert len(llm.calls) == 3
    assert "phygdpo reply could not be parsed after 3 attempts" in str(ei.value)
    assert ei.value.step == "phygdpo" and ei.value.raw == "[1, 2, 3]"
    assert ei.value.expected == list(PhysicsCoT.model_fields)


# ---------------------------------------------------------------- the 100-word limit

LONG = " ".join(["The ball falls under gravity and hits the floor hard."] * 12)  # 120 words


def test_an_over_long_extended_prompt_is_reasked_with_its_word_count():
    llm = ScriptedLLM([reply(extended_prompt=LONG), reply()])
    res = run(llm)
    assert res.extended_prompt == EXTENDED and len(llm.calls) == 2
    assert "was 120 words, over the limit of 100 words" in feedback(llm, 1)


def test_still_over_after_the_reask_is_trimmed_at_a_sentence_end_with_a_warning(caplog):
    llm = ScriptedLLM([reply(extended_prompt=LONG), reply(extended_prompt=LONG + " More text")])
    with caplog.at_level(logging.WARNING, logger="phyt2v"):
        res = run(llm)
    assert len(llm.calls) == 2
    words = res.extended_prompt.split()
    assert len(words) == 100 and res.extended_prompt.endswith("hard.")  # 10 whole sentences
    assert any("still 122 words" in r.getMessage() and "100" in r.getMessage() for r in caplog.records)


def test_a_reask_that_cannot_be_parsed_keeps_and_trims_the_first_reply(caplog):
    llm = ScriptedLLM([reply(extended_prompt=LONG, physics_score=0.9), "no", "still no", "nope"])
    with caplog.at_level(logging.WARNING, logger="phyt2v"):
        res = run(llm)
    assert len(llm.calls) == 4 and res.physics_score == 0.9
    assert len(res.extended_prompt.split()) == 100
    assert any("keeping the first one" in r.getMessage() for r in caplog.records)


def test_trim_words_prefers_a_sentence_end_and_falls_back_to_a_word_boundary():
    text = "One two three. " + " ".join(f"w{i}" for i in range(20))
    assert trim_words(text, 10) == "One two three. w0 w1 w2 w3 w4 w5 w6."  # a sentence end at 3 of 10 is too early
    text = " ".join(f"w{i}" for i in range(6)) + ". Tail words go on and on"
    assert trim_words(text, 8) == "w0 w1 w2 w3 w4 w5."
    assert trim_words("short prompt", 8) == "short prompt"
    assert trim_words("a, b, c, d, e", 3) == "a, b, c."


def test_the_word_limit_is_a_parameter_of_the_step():
    llm = ScriptedLLM([reply(), reply()])
    res = physics_cot(llm, PROMPT, log=CallLog(None), max_words=10)
    assert len(res.extended_prompt.split()) <= 10 and len(llm.calls) == 2
    assert "At most 10 words" in feedback(llm, 0)


# ---------------------------------------------------------------- label and input

def test_the_label_threshold_is_060():
    assert PHYSICS_THRESHOLD == 0.60
    assert not PhysicsCoT(**cot(physics_score=0.59)).physical
    assert PhysicsCoT(**cot(physics_score=0.60)).physical


def test_an_empty_prompt_is_refused_before_any_llm_call():
    llm = ScriptedLLM([])
    with pytest.raises(InputError, match="prompt is empty"):
        phygdpo_enhance(llm, "  \n ", log=CallLog(None))
    assert llm.calls == []


# ---------------------------------------------------------------- the CLI

def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "PHYT2V_DEBUG")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, "-m", "phyt2v", "enhance", PROMPT, "--preset", "smoke", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_bad_method_is_exit_2_naming_the_choices():
    p = cli("--method", "phygpdo")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    text = " ".join(p.stderr.split())
    assert "unknown enhance method 'phygpdo'" in text and ", ".join(METHODS) in text


@pytest.mark.slow
def test_cli_phygdpo_prints_the_extended_prompt_score_and_label():
    replies = [ok(reply(physics_score=0.59)), ok(reply(physics_score=0.6)), ok(reply(physics_score=0.59))]
    with FaultyServer(replies) as srv:
        runs = [cli("--method", "phygdpo", "--set", f"llm.base_url={srv.base_url}", *extra)
                for extra in ([], [], ["--json"])]
        assert srv.count == 3
    assert all(p.returncode == 0 for p in runs), [p.stderr for p in runs]
    low, high, as_json = runs
    assert "physics score: 0.59 (not physical; physical at >= 0.60)" in low.stdout
    assert "physics score: 0.60 (physical; physical at >= 0.60)" in high.stdout
    assert EXTENDED in " ".join(low.stdout.split())
    data = json.loads(as_json.stdout)
    assert data["physical"] is False and data["physics_score"] == 0.59 and data["method"] == "phygdpo"
    assert {k: data[k] for k in PhysicsCoT.model_fields} == cot(physics_score=0.59)


@pytest.mark.slow
def test_cli_phygdpo_with_the_embedded_smollm2():
    """SmolLM2-135M fills the schema (grammar-constrained) but its content is weak: assert structure only."""
    p = cli("--method", "phygdpo", "--json")
    assert "Traceback" not in p.stderr
    if p.returncode == 1:  # honest failure: one ParseError line naming the step
        assert "phygdpo reply" in p.stderr, p.stderr
        return
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    res = PhysicsCoT.model_validate({k: data[k] for k in PhysicsCoT.model_fields})
    assert 0.0 <= res.physics_score <= 1.0 and data["physical"] == (res.physics_score >= 0.6)
    assert 1 <= len(res.extended_prompt.split()) <= 100
