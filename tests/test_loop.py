"""Loop logic with test doubles: stop rules, best round, SA against the original prompt,
history in refinement, resume after failures and Ctrl-C, the run record on disk."""

import json
import os
import signal
from types import SimpleNamespace

import pytest
from doubles import RULES, FakeCaptioner, FakeGenerator, FakeScorer, ScriptedLLM, physics_llm, step_of

from phyt2v import Refiner, load_config
from phyt2v.errors import InputError, Interrupted, LLMError, ParseError
from phyt2v.loop import best_round, stop_reason
from phyt2v.store.record import RoundRecord, RoundScores, RunRecord

PROMPT = "a rubber ball is dropped onto a wooden floor"


def make(tmp_path, scores, llm=None, rounds=4, gen=None, **loop):
    cfg = load_config(loop={"max_rounds": rounds, **loop}, out=str(tmp_path))
    parts = dict(llm=llm or physics_llm(), generator=gen or FakeGenerator(), captioner=FakeCaptioner(),
                 scorer=FakeScorer(scores))
    return Refiner(cfg, **parts), parts


def rounds_with(scores):
    return [RoundRecord(index=i + 1, prompt="p", scores=RoundScores(sa=s, pc=s, score=s))
            for i, s in enumerate(scores)]


def test_stop_rules():
    cfg = SimpleNamespace(threshold=0.8, epsilon=0.01, patience=2, max_rounds=4, min_rounds=1)
    assert stop_reason(rounds_with([0.5]), cfg) is None
    assert stop_reason(rounds_with([0.5, 0.85]), cfg) == "threshold"
    assert stop_reason(rounds_with([0.5, 0.505, 0.5]), cfg) == "no_improvement"
    assert stop_reason(rounds_with([0.5, 0.6, 0.7]), cfg) is None
    assert stop_reason(rounds_with([0.5, 0.6, 0.7, 0.75]), cfg) == "max_rounds"
    cfg.min_rounds = 3
    assert stop_reason(rounds_with([0.9, 0.95]), cfg) is None


def test_best_round_is_not_the_last():
    assert best_round(rounds_with([0.3, 0.7, 0.5])) == 2
    assert best_round(rounds_with([0.6, 0.6])) == 1  # ties go to the earlier round


def test_full_run_scores_original_prompt_and_returns_best(tmp_path):
    ref, parts = make(tmp_path, [(0.2, 0.2), (0.8, 0.6), (0.4, 0.4), (0.5, 0.5)], patience=5)
    res = ref.refine(PROMPT)
    assert [r.index for r in res.rounds] == [1, 2, 3, 4]
    assert res.stop_reason == "max_rounds"
    assert res.best.index == 2 and res.best.scores.score == pytest.approx(0.7)
    # SA is always scored against the user's original prompt, never the refined one
    assert parts["scorer"].prompts == [PROMPT] * 4
    # round k+1 is generated from round k's refined prompt
    assert parts["generator"].calls == [PROMPT, "refined prompt number 1", "refined prompt number 2",
                                        "refined prompt number 3"]
    assert res.best_video.is_file() and res.best_video.name == "video.mp4"
    rec = RunRecord.model_validate_json((res.run_dir / "run.json").read_text())
    assert rec.status == "finished" and rec.best_round == 2
    for k in (1, 2, 3, 4):
        d = res.run_dir / f"round-{k}"
        assert (d / "video.mp4").stat().st_size > 0 and (d / "caption.txt").is_file()
        assert json.loads((d / "scores.json").read_text())["sa"] == rec.rounds[k - 1].scores.sa
    # no mismatch/refine after the last round
    assert rec.rounds[3].mismatch is None and rec.rounds[2].refined_prompt == "refined prompt number 3"


def test_rules_carried_into_every_round_and_history_in_refine(tmp_path):
    llm = physics_llm()
    ref, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3), (0.35, 0.35), (0.5, 0.5)], llm=llm, patience=5)
    ref.refine(PROMPT)
    steps = [step_of(m) for m in llm.calls]
    assert steps == ["rules", "mismatch", "refine", "mismatch", "refine", "mismatch", "refine"]
    for msgs in llm.calls[1:]:
        assert RULES["rules"][0] in msgs[-1]["content"]
    third_refine = llm.calls[6][-1]["content"]
    assert "Round 1" in third_refine and "Round 2" in third_refine and PROMPT in third_refine
    assert "refined prompt number 1" in third_refine  # the prompt that failed in round 2


def test_threshold_and_empty_mismatch_stop(tmp_path):
    ref, parts = make(tmp_path / "a", [(0.95, 0.95)], threshold=0.9)
    assert ref.refine(PROMPT).stop_reason == "threshold"
    assert len(parts["generator"].calls) == 1
    ref, parts = make(tmp_path / "b", [(0.3, 0.3)], llm=physics_llm(mismatches=[[]]))
    res = ref.refine(PROMPT)
    assert res.stop_reason == "empty_mismatch" and len(res.rounds) == 1


def test_calls_are_logged(tmp_path):
    ref, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], rounds=2)
    res = ref.refine(PROMPT)
    lines = [json.loads(x) for x in (res.run_dir / "calls.jsonl").read_text().splitlines()]
    assert [(c["role"], c["step"]) for c in lines] == [
        ("llm", "rules"), ("generator", "generate"), ("captioner", "caption"), ("scorer", "score"),
        ("llm", "mismatch"), ("llm", "refine"), ("generator", "generate"), ("captioner", "caption"),
        ("scorer", "score")]
    assert all(c["duration_s"] >= 0 and c["ok"] for c in lines)
    assert lines[0]["inputs"]["messages"][-1]["content"].count(PROMPT) == 1
    assert json.loads(lines[0]["output"])["objects"] == RULES["objects"]


def test_llm_failure_keeps_finished_rounds_and_resumes(tmp_path):
    good = physics_llm()
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        if step_of(messages) == "mismatch" and calls["n"] > 3:  # fails in round 2
            raise LLMError("endpoint http://127.0.0.1:9/v1 returned 500 after 4 attempts")
        return good.script(messages)

    gen = FakeGenerator()
    ref, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], llm=ScriptedLLM(flaky), gen=gen, patience=5)
    with pytest.raises(LLMError):
        ref.refine(PROMPT)
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    assert rec.status == "failed" and rec.error.kind == "LLMError" and rec.error.step == "mismatch"
    assert rec.rounds[0].scores is not None and rec.rounds[1].scores is not None
    assert len(gen.calls) == 2
    # resume with a working LLM: no finished generation is redone
    gen2 = FakeGenerator()
    ref2, _ = make(tmp_path, [(0.4, 0.4), (0.5, 0.5)], gen=gen2, patience=5)
    res = ref2.refine(PROMPT)
    assert res.record.status == "finished" and len(res.rounds) == 4
    assert len(gen2.calls) == 2  # only rounds 3 and 4
    # a finished run returns at once with zero model calls
    gen3 = FakeGenerator()
    ref3, parts3 = make(tmp_path, [], llm=ScriptedLLM([]), gen=gen3, patience=5)
    again = ref3.refine(PROMPT)
    assert again.best.index == res.best.index and gen3.calls == [] and parts3["llm"].calls == []


def test_parse_failure_is_recorded_with_raw_text(tmp_path):
    def junk(messages):
        return json.dumps(RULES) if step_of(messages) == "rules" else "I think the video is fine!"

    ref, _ = make(tmp_path, [(0.2, 0.2)], llm=ScriptedLLM(junk), parse_retries=1)
    with pytest.raises(ParseError) as ei:
        ref.refine(PROMPT)
    assert "mismatch" in str(ei.value) and ei.value.raw == "I think the video is fine!"
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    assert rec.status == "failed" and rec.error.raw == "I think the video is fine!"
    assert rec.error.expected == ["reasoning", "mismatches"]
    assert rec.rounds[0].scores.sa == 0.2


def test_ctrl_c_finishes_current_step_then_resumes(tmp_path):
    gen = FakeGenerator(on_generate=lambda p: os.kill(os.getpid(), signal.SIGINT))
    ref, parts = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], gen=gen, rounds=2)
    with pytest.raises(Interrupted):
        ref.refine(PROMPT)
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    assert rec.status == "interrupted" and rec.rounds[0].done == ["generate"]
    assert parts["captioner"].calls == []
    gen2 = FakeGenerator()
    ref2, parts2 = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], gen=gen2, rounds=2)
    res = ref2.refine(PROMPT)
    assert res.record.status == "finished" and gen2.calls == ["refined prompt number 1"]
    assert len(parts2["captioner"].calls) == 2


def test_prompt_validation(tmp_path):
    ref, parts = make(tmp_path, [])
    with pytest.raises(InputError, match="empty"):
        ref.refine("   \n ")
    long = " ".join(["word"] * 60)  # FakeGenerator budget is 40 tokens
    with pytest.raises(InputError, match="60 tokens.*at most 40.*allow_long_prompt"):
        ref.refine(long)
    assert parts["generator"].calls == []
    ref, parts = make(tmp_path, [(0.95, 0.95)], allow_long_prompt=True)
    assert ref.refine(long).record.status == "finished"
    assert ref.refine(long).rounds[0].over_budget


def test_refined_prompt_over_budget_is_reasked_once(tmp_path):
    too_long = " ".join(["very"] * 50)
    llm = physics_llm(refined=[too_long, "a short physically correct prompt"])
    ref, parts = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], llm=llm, rounds=2)
    res = ref.refine(PROMPT)
    assert res.rounds[1].prompt == "a short physically correct prompt"
    refine_calls = [m for m in llm.calls if step_of(m) == "refine"]
    assert len(refine_calls) == 2 and "50 tokens, over the 40-token limit" in refine_calls[1][-1]["content"]


def test_backends_built_once_per_process_for_the_same_settings(monkeypatch):
    """Call-time generator settings (steps, size, frames, guidance) reuse the loaded weights: ONE load;
    a load-time setting (the model) replaces the held backend."""
    from phyt2v import registry

    built, reconfigured = [], []

    class Dummy:
        backend, model_id = "dummy", "d"

        @classmethod
        def from_config(cls, config):
            built.append(config.generator.model)
            return cls()

        @classmethod
        def load_settings(cls, config):
            return {"model": config.generator.model}

        def reconfigure(self, config):
            reconfigured.append(config.generator.steps)
            return Dummy()

    monkeypatch.setitem(registry.BUILTINS, "generator:dummy", "builtins:object")
    monkeypatch.setattr(registry, "resolve", lambda role, name: Dummy)
    registry.clear_cache()
    try:
        a = load_config(overrides=["generator.backend=dummy"])
        b = load_config(overrides=["generator.backend=dummy", "loop.max_rounds=2", "llm.temperature=0"])
        c = load_config(overrides=["generator.backend=dummy", "generator.steps=3"])
        d = load_config(overrides=["generator.backend=dummy", "generator.model=other"])
        assert registry.build("generator", a) is registry.build("generator", b)  # other sections differ
        assert registry.build("generator", c) is not registry.build("generator", a)
        assert built == ["THUDM/CogVideoX-5b"] and reconfigured == [3]  # steps changed: no second load
        registry.build("generator", d)
        assert built == ["THUDM/CogVideoX-5b", "other"]
        assert registry.build("generator", a) is not None and built[-1] == "THUDM/CogVideoX-5b"  # replaced, reloaded
    finally:
        registry.clear_cache()


def test_unexpected_backend_error_is_recorded_and_reported_in_one_line(tmp_path):
    from phyt2v.errors import BackendError

    class Exploding(FakeCaptioner):
        def caption(self, video, *, objects=None):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details here")

    cfg = load_config(loop={"max_rounds": 2}, out=str(tmp_path))
    ref = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=Exploding(),
                  scorer=FakeScorer([(0.2, 0.2)]))
    with pytest.raises(BackendError, match=r"^caption failed: RuntimeError: CUDA out of memory\. Tried") as ei:
        ref.refine(PROMPT)
    assert "\n" not in str(ei.value) and isinstance(ei.value.__cause__, RuntimeError)
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    assert rec.status == "failed" and rec.error.step == "caption" and rec.error.kind == "RuntimeError"
    assert rec.rounds[0].done == ["generate"]


def test_sa_and_pc_weights_apply_to_their_own_score(tmp_path):
    ref, _ = make(tmp_path, [(0.9, 0.1)], rounds=1, sa_weight=3.0, pc_weight=1.0)
    s = ref.refine(PROMPT).rounds[0].scores
    assert (s.sa, s.pc) == (0.9, 0.1)
    assert s.score == pytest.approx((3 * 0.9 + 1 * 0.1) / 4)  # 0.7; swapped weights would give 0.3


def test_empty_mismatch_does_not_stop_before_min_rounds(tmp_path):
    llm = physics_llm(mismatches=[[], [], []])
    ref, parts = make(tmp_path, [(0.3, 0.3), (0.3, 0.3), (0.3, 0.3)], llm=llm, min_rounds=2, patience=5)
    res = ref.refine(PROMPT)
    assert res.stop_reason == "empty_mismatch" and len(res.rounds) == 2
    assert parts["generator"].calls == [PROMPT, "refined prompt number 1"]


def test_history_in_refine_false_leaves_earlier_rounds_out(tmp_path):
    llm = physics_llm()
    ref, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3), (0.35, 0.35)], llm=llm, rounds=3, patience=5,
                  history_in_refine=False)
    ref.refine(PROMPT)
    refines = [m[-1]["content"] for m in llm.calls if step_of(m) == "refine"]
    assert len(refines) == 2
    assert all("Earlier rounds" not in text and "Round 1" not in text for text in refines)


@pytest.mark.parametrize("tokens", [40, 140])
def test_refine_and_enhance_state_a_word_budget_that_follows_the_token_budget(tmp_path, tokens):
    import re

    gen = FakeGenerator()
    gen.max_prompt_tokens = tokens
    llm = physics_llm()
    ref, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], llm=llm, gen=gen, rounds=2)
    ref.refine(PROMPT)
    ref.enhance(PROMPT)
    texts = [m[-1]["content"] for m in llm.calls if step_of(m) in ("refine", "enhance")]
    assert len(texts) == 2
    for text in texts:
        m = re.search(r"under (\d+) words \((\d+) tokens", " ".join(text.split()))
        assert m, text
        words, toks = int(m.group(1)), int(m.group(2))
        assert toks == tokens
        assert words == int(tokens / 1.4)  # TOKENS_PER_WORD: 28 words for 40 tokens, 100 for 140
