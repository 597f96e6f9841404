"""Layouts (LVD's stage 1): LVD's text format read and written, the JSON reply converted, the checks of a planned
layout, LVD's phrase matching and the schema a constrained LLM gets. Pure code, no model."""

import json

import pytest

from phyt2v.loop import layouts
from phyt2v.loop.parsing import ReplyError
from phyt2v.loop.words import article, find_phrase, noun_phrases, plural
from phyt2v.schemas import LayoutReply

# A reply as GPT models write LVD's format: reasoning first, then frames, then the background keyword.
REPLY = """Reasoning: The ball is thrown from the left, so x grows; gravity pulls it down until it bounces.
Frame 1: [{'id': 0, 'name': 'red ball', 'box': [0, 206, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Frame 2: [{'id': 0, 'name': 'red ball', 'box': [80, 246, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Frame 3: [{'id': 0, 'name': 'red ball', 'box': [160, 326, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Frame 4: [{'id': 0, 'name': 'red ball', 'box': [240, 446, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Frame 5: [{'id': 0, 'name': 'red ball', 'box': [320, 366, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Frame 6: [{'id': 0, 'name': 'red ball', 'box': [400, 446, 50, 50]}, {'id': 1, 'name': 'wall', 'box': [462, 0, 50, 512]}]
Background keyword: garden"""

# The same kind of reply as models also write it: a fence, odd spacing and case, a comment after a list, a
# list item dash, an empty frame (the object out of view), no "Reasoning:" label, trailing text.
MESSY = """```
The cat walks in from the right and leaves at the left.

Frame 1 :[]
frame  2: [{'id': 0, 'name': 'cat', 'box': [400, 300, 100, 80]}]  - the cat enters
Frame 3: - [{'id': 0, 'name': 'cat', 'box': [300, 300, 100, 80]}]
Frame 4:[{"id": 0, "name": "cat", "box": [200, 300, 100, 80]}]
Frame 5: [{'id': 0, 'name': 'cat', 'box': [100, 300, 100, 80]}]
Frame 6: []
Background Keyword:  living room
```
"""


def test_lvd_text_is_read_into_normalised_boxes():
    lay = layouts.parse_lvd_text(REPLY)
    assert lay.reasoning.startswith("The ball is thrown from the left") and lay.background == "garden"
    assert [kf.t for kf in lay.keyframes] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    ball = lay.keyframes[3].objects[0]
    assert (ball.id, ball.name) == (0, "red ball")
    assert ball.box == pytest.approx([240 / 512, 446 / 512, 290 / 512, 496 / 512])
    assert lay.keyframes[0].objects[1].box == pytest.approx([462 / 512, 0.0, 1.0, 1.0])


def test_lvd_text_tolerates_what_models_write():
    lay = layouts.parse_lvd_text(MESSY)
    assert lay.background == "living room"
    assert lay.reasoning == "The cat walks in from the right and leaves at the left."
    assert [len(kf.objects) for kf in lay.keyframes] == [0, 1, 1, 1, 1, 0]
    assert [kf.objects[0].box[0] for kf in lay.keyframes[1:5]] == pytest.approx([400 / 512, 300 / 512, 200 / 512,
                                                                                100 / 512])


@pytest.mark.parametrize("broken, named", [
    (REPLY.replace("Frame 4:", "Frame four:"), "Frame 4:"),
    (REPLY.replace("Background keyword: garden", "garden"), "Background keyword:"),
    (REPLY.replace("'box': [160, 326, 50, 50]", "'box': [160, 326, 50]"), "Frame 3"),
    (REPLY.replace("Frame 2: [", "Frame 2: ["[:-1] + "{"), "Frame 2"),
])
def test_unreadable_lvd_text_names_the_line(broken, named):
    with pytest.raises(ReplyError, match=named):
        layouts.parse_lvd_text(broken)


def test_lvd_text_round_trip():
    lay = layouts.parse_lvd_text(REPLY)
    text = layouts.lvd_text(lay)
    assert text.splitlines()[1] == REPLY.splitlines()[1]
    assert layouts.parse_lvd_text(text) == lay


def test_json_reply_becomes_a_layout_with_absent_frames():
    reply = LayoutReply.model_validate({
        "reasoning": "it appears", "background": "park",
        "objects": [{"name": "dog", "boxes": [[0, 0, 0, 0], [35, 20, 35, 60], [10, 20, 40, 60.4], [20, 20, 50, 60],
                                              [30, 20, 60, 60], [40, 20, 70, 60]]},
                    {"name": "tree", "boxes": [[300, 100, 400, 400]] * 6}]})
    lay = layouts.to_layout(reply)
    assert [[o.id for o in kf.objects] for kf in lay.keyframes] == [[1], [1], [0, 1], [0, 1], [0, 1], [0, 1]]
    assert lay.keyframes[2].objects[0].box == pytest.approx([10 / 512, 20 / 512, 40 / 512, 60 / 512])
    assert layouts.layout_json(lay)["keyframes"][2]["objects"][0] == {"id": 0, "name": "dog",
                                                                      "box": [0.0195, 0.0391, 0.0781, 0.1172]}
    assert list(layouts.layout_json(lay)) == ["keyframes", "background", "reasoning"]


def test_reply_boxes_are_tidied_or_refused():
    def box(b):
        return LayoutReply.model_validate({"reasoning": "", "background": "", "objects": [
            {"name": "dog", "boxes": [b]}]}).objects[0].boxes[0]

    assert box([40.6, 60, 10, 20]) == [10, 20, 41, 60]            # corners put in order, whole pixels
    assert box([-20, 5, 530, 30]) == [0, 5, 512, 30]              # a small overhang moved onto the edge
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        box([-60, 5, 100, 30])                                     # a larger one is an error for the model


def test_objects_with_different_frame_counts_are_refused():
    reply = LayoutReply.model_validate({"reasoning": "", "background": "", "objects": [
        {"name": "dog", "boxes": [[1, 1, 5, 5]] * 6}, {"name": "cat", "boxes": [[1, 1, 5, 5]] * 5}]})
    with pytest.raises(ReplyError, match="different numbers of boxes"):
        layouts.to_layout(reply)


def test_read_plan_takes_json_or_lvd_text():
    good = {"reasoning": "r", "background": "b", "objects": [{"name": "red ball", "boxes": [[5, 5, 20, 20]] * 6}]}
    assert layouts.read_plan(json.dumps(good)).keyframes[5].objects[0].name == "red ball"
    assert layouts.read_plan(REPLY) == layouts.parse_lvd_text(REPLY)
    with pytest.raises(ReplyError, match="boxes"):  # five boxes where six frames are asked: the JSON's own error
        layouts.read_plan(json.dumps({**good, "objects": [{"name": "ball", "boxes": [[5, 5, 20, 20]] * 5}]}))


def test_reply_schema_fixes_the_frame_count_and_offers_the_prompts_phrases():
    names = layouts.name_choices("a red ball is thrown from left to right", ["the red ball", "grass"])
    assert names[0] == "red ball" and "grass" not in names
    schema = layouts.reply_model(4, names).model_json_schema()
    obj = schema["$defs"]["PlannedObject"]["properties"]
    assert obj["boxes"]["minItems"] == obj["boxes"]["maxItems"] == 4
    assert obj["name"]["enum"] == list(names)
    assert (schema["properties"]["objects"]["minItems"], schema["properties"]["objects"]["maxItems"]) == (1, 6)


def _planned(*frames, names=("red ball",)):
    """A planned layout from LVD text: frames of (id, name, [x, y, w, h])."""
    lines = [f"Frame {k}: " + repr([{"id": i, "name": n, "box": b} for i, n, b in f]) for k, f in enumerate(frames, 1)]
    return layouts.parse_lvd_text("\n".join(lines) + "\nBackground keyword: garden", keyframes=len(frames))


PROMPT = "a red ball is thrown from left to right and bounces off a wall"


def test_a_sound_layout_has_no_violations():
    lay = layouts.parse_lvd_text(REPLY)
    assert layouts.violations(lay, PROMPT) == []


@pytest.mark.parametrize("frames, found", [
    ([[(0, "red ball", [10, 10, 40, 40])]] * 5, "it has 5 frames; give exactly 6"),
    ([[(0, "red ball", [490, 10, 60, 40])]] * 6, "px past the right edge"),
    ([[(0, "red ball", [10, -40, 60, 40])]] * 6, "past the top edge"),
    ([[(0, "red ball", [10, 10, 0, 40])]] * 6, "no area"),
    ([[(0, "red ball", [10, 10, 40, 40])]] * 5 + [[(0, "wall", [10, 10, 40, 40])]], "id 0 was 'red ball'"),
    ([[(0, "red ball", [10, 10, 40, 40]), (0, "wall", [100, 10, 40, 40])]] * 6, "used twice"),
    ([[(0, "tennis racket", [10, 10, 40, 40])]] * 6, "'tennis racket' is not a phrase of the caption"),
    ([[]] * 6, "no frame has any object"),
])
def test_violations_name_the_fault(frames, found):
    problems = layouts.violations(_planned(*frames), PROMPT)
    assert any(found in p for p in problems), problems


def test_small_overhangs_pass_and_are_clipped():
    lay = _planned(*[[(0, "red ball", [500, 10, 30, 40])]] * 6)  # 18 px past the edge: within the tolerance
    assert layouts.violations(lay, PROMPT) == []
    assert layouts.clip(lay).keyframes[0].objects[0].box[2] == 1.0


def test_lvd_phrase_matching():
    prompt = "A realistic lively video of a scene with three lively cats"
    assert find_phrase(prompt, "lively cats") == "lively cats"
    assert find_phrase(prompt, "cat 2") == "cats"            # numbers stripped, then the plural
    assert find_phrase(prompt, "sleeping cat") == "cats"     # the last word, then its plural
    assert find_phrase(prompt, "Lively Cats") == "Lively Cats"
    assert find_phrase(prompt, "dog") is None
    assert find_phrase("a bus and a boy", "buses") is None and find_phrase("two buses", "bus") == "buses"


def test_english_helpers():
    assert [plural(w) for w in ("moving car", "box", "puppy", "day", "knife", "man", "sheep", "potato")] == [
        "moving cars", "boxes", "puppies", "days", "knives", "men", "sheep", "potatoes"]
    assert [article(w) for w in ("orange", "red", "hour", "unicorn", "egg")] == [
        "an orange", "a red", "an hour", "a unicorn", "an egg"]
    assert noun_phrases("a red ball is thrown from the left, then it bounces") == [
        "red ball", "red", "ball", "thrown", "left", "bounces"]


def test_object_entries_are_not_flattened_like_strings():
    from phyt2v.loop.parsing import parse_reply

    # a one-field object in a list of strings is read as its text; in a list of objects it stays an object
    reply = '{"reasoning": "r", "background": "b", "objects": [{"name": "ball"}]}'
    with pytest.raises(ReplyError, match=r"objects\.0\.boxes': missing"):
        parse_reply(reply, LayoutReply)
