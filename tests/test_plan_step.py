"""The layout planning step (``llm_steps.plan_layout``): through a scripted LLM (exact content, the re-ask on a
faulty layout, the failure after it) and through the embedded SmolLM2 (structure only: it is weak)."""

import json

import pytest
from doubles import RULES, ScriptedLLM

from phyt2v.errors import ParseError
from phyt2v.loop import layouts, llm_steps
from phyt2v.schemas import Layout, Rules
from phyt2v.store.record import CallLog

PROMPT = "a red ball is thrown from left to right and bounces"
BALL = [[10, 150, 50, 190], [90, 180, 130, 220], [170, 270, 210, 310], [250, 420, 290, 460], [330, 320, 370, 360],
        [410, 360, 450, 400]]  # corners in pixels of the 512 canvas


def reply(name="red ball", boxes=BALL, **kw):
    return json.dumps({"reasoning": "thrown right; gravity pulls it down; it bounces", "background": "garden",
                       "objects": [{"name": name, "boxes": boxes}], **kw})


def test_plan_from_a_scripted_llm(tmp_path):
    llm = ScriptedLLM([reply()])
    log = CallLog(tmp_path / "calls.jsonl")
    lay = llm_steps.plan_layout(llm, PROMPT, Rules(**RULES), log=log)
    assert isinstance(lay, Layout) and len(llm.calls) == 1
    assert layouts.layout_json(lay) == {
        "keyframes": [{"t": k / 2, "objects": [{"id": 0, "name": "red ball",
                                               "box": [round(v / 512, 4) for v in b]}]}
                      for k, b in enumerate(BALL)],
        "background": "garden", "reasoning": "thrown right; gravity pulls it down; it bounces"}
    asked = llm.calls[0][-1]["content"]
    assert f'Caption: "{PROMPT}"' in asked and "rubber ball, wooden floor" in asked
    assert "- gravity pulls the ball down" in asked and "at 0, 0.5, 1, 1.5, 2, 2.5 seconds" in asked
    assert "tennis ball" in llm.calls[0][0]["content"]  # the in-context examples
    entry = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])
    assert entry["step"] == "layout" and entry["ok"]


def test_keyframes_and_rate_are_the_callers():
    llm = ScriptedLLM([reply(boxes=BALL[:4])])
    lay = llm_steps.plan_layout(llm, PROMPT, None, log=CallLog(None), keyframes=4, per_second=4.0)
    assert [kf.t for kf in lay.keyframes] == [0.0, 0.25, 0.5, 0.75]
    assert "Plan exactly 4 frames, at 0, 0.25, 0.5, 0.75 seconds." in llm.calls[0][-1]["content"]
    assert "Main objects: (not given)" in llm.calls[0][-1]["content"]


def test_an_lvd_text_reply_is_read_too():
    text = "Reasoning: it rolls.\n" + "\n".join(  # LVD's boxes: [x, y, width, height]
        f"Frame {k + 1}: [{{'id': 0, 'name': 'red ball', 'box': {[x0, y0, x1 - x0, y1 - y0]}}}]"
        for k, (x0, y0, x1, y1) in enumerate(BALL)) + \
        "\nBackground keyword: lawn"
    lay = llm_steps.plan_layout(ScriptedLLM([text]), PROMPT, None, log=CallLog(None))
    assert lay.background == "lawn" and lay.keyframes[3].objects[0].box[1] == pytest.approx(420 / 512)


def test_a_faulty_layout_is_reasked_once_with_its_faults():
    llm = ScriptedLLM([reply(name="tennis racket"), reply()])
    lay = llm_steps.plan_layout(llm, PROMPT, None, log=CallLog(None))
    assert lay.keyframes[0].objects[0].name == "red ball" and len(llm.calls) == 2
    again = llm.calls[1][-1]["content"]
    assert "Your last layout could not be used" in again
    assert "'tennis racket' is not a phrase of the caption" in again


def test_still_faulty_after_the_reask_is_a_parse_error():
    racket = json.dumps({"reasoning": "", "background": "", "objects": [
        {"name": "tennis racket", "boxes": BALL}, {"name": "net", "boxes": BALL}]})
    llm = ScriptedLLM([racket, racket])
    with pytest.raises(ParseError, match=r"unusable after a re-ask: 'tennis racket' is not a phrase of the caption; "
                                         r"name each object with words of the caption \(and 1 more\)") as e:
        llm_steps.plan_layout(llm, PROMPT, None, log=CallLog(None))
    assert len(llm.calls) == 2 and e.value.step == "layout" and '"tennis racket"' in e.value.raw


def test_unreadable_replies_go_through_the_parse_ladder_first():
    llm = ScriptedLLM(["I think the ball flies.", reply(boxes=BALL[:5]), reply()])
    lay = llm_steps.plan_layout(llm, PROMPT, None, log=CallLog(None), retries=2)
    assert len(lay.keyframes) == 6 and len(llm.calls) == 3
    assert "could not be used: no JSON object" in llm.calls[1][-1]["content"]
    assert "objects.0.boxes" in llm.calls[2][-1]["content"]


@pytest.mark.slow
def test_plan_with_the_embedded_smollm2():
    """SmolLM2-135M, schema-constrained (the smoke preset's LLM, one thread): it plans a usable layout, six
    keyframes of boxes inside the frame named with phrases of the prompt. Its content is not judged (it is weak)."""
    from llm_servers import smollm_gguf

    from phyt2v import registry
    from phyt2v.config import Config, LLMConfig

    smollm_gguf()
    llm = registry.build("llm", Config(llm=LLMConfig(backend="embedded", n_ctx=4096, temperature=0.0,
                                                     max_tokens=640, options={"n_threads": 1})))
    log = CallLog(None)
    try:
        lay = llm_steps.plan_layout(llm, PROMPT, None, log=log, retries=1)
    finally:
        llm.close()
    assert [kf.t for kf in lay.keyframes] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert any(kf.objects for kf in lay.keyframes) and layouts.violations(lay, PROMPT) == []
    assert all(0 <= v <= 1 for kf in lay.keyframes for o in kf.objects for v in o.box)
    assert 1 <= log.count <= 4


def test_the_reply_gets_room_for_its_boxes():
    class Recording(ScriptedLLM):
        def __init__(self, script, max_tokens):
            super().__init__(script)
            self.max_tokens, self.asked = max_tokens, []

        def complete(self, messages, *, schema=None, max_tokens=None):
            self.asked.append(max_tokens)
            return super().complete(messages, schema=schema, max_tokens=max_tokens)

    small, big = Recording([reply()], 640), Recording([reply()], 2000)
    llm_steps.plan_layout(small, PROMPT, None, log=CallLog(None))
    llm_steps.plan_layout(big, PROMPT, None, log=CallLog(None))
    assert small.asked == [layouts.reply_tokens(6)] == [880] and big.asked == [2000]
