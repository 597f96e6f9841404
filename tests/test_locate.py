"""The captioners' ``locate``: the box parser on the reply formats of Qwen2.5-VL (absolute pixels of the image as its
processor resized it), Qwen3-VL and Qwen2-VL (a 0-1000 grid), the matching of boxes to the objects asked, and the
question asked of a real tiny VLM and of a served one (loopback vision server, real openai SDK)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v.captioners.grounding import (  # noqa: E402
    PIXELS,
    THOUSAND,
    box_format,
    instruction,
    match,
    parse_boxes,
    qwen_resized,
)
from phyt2v.store.video_io import write_video  # noqa: E402

# Qwen2.5-VL, as in its spatial-understanding cookbook: a fenced JSON list, absolute pixels of the resized input
QWEN25 = """```json
[
\t{"bbox_2d": [112, 84, 224, 168], "label": "red ball"},
\t{"bbox_2d": [0, 252, 448, 336], "label": "wooden table"}
]
```"""
# Qwen3-VL: the same JSON, relative coordinates on a 0-1000 grid
QWEN3 = """```json
[
\t{"bbox_2d": [139, 768, 315, 954], "label": "cat"},
\t{"bbox_2d": [366, 679, 536, 849], "label": "dog"}
]
```"""
# Qwen2-VL: its box tokens, 0-1000; decoded with skip_special_tokens they are gone
QWEN2 = "<|object_ref_start|>the red ball<|object_ref_end|><|box_start|>(101,202),(303,404)<|box_end|>"


def test_qwen25_boxes_are_pixels_of_the_image_the_model_saw():
    got = parse_boxes(QWEN25, PIXELS, (448, 336))
    assert got == [("red ball", pytest.approx([0.25, 0.25, 0.5, 0.5])), ("wooden table", pytest.approx([0, 0.75, 1, 1]))]
    # read on the 0-1000 grid instead, the same reply gives other boxes: the format matters
    assert parse_boxes(QWEN25, THOUSAND)[0][1] == pytest.approx([0.112, 0.084, 0.224, 0.168])


def test_qwen3_boxes_are_on_a_0_1000_grid():
    got = parse_boxes(QWEN3, THOUSAND)
    assert got == [("cat", pytest.approx([0.139, 0.768, 0.315, 0.954])), ("dog", pytest.approx([0.366, 0.679, 0.536, 0.849]))]


def test_qwen2_box_tokens_with_and_without_the_special_tokens():
    for text in (QWEN2, "the red ball(101,202),(303,404)"):
        assert parse_boxes(text, THOUSAND) == [("the red ball", pytest.approx([0.101, 0.202, 0.303, 0.404]))]


def test_cut_replies_keep_their_whole_entries_and_odd_boxes_are_fixed_or_dropped():
    cut = '[{"bbox_2d": [10, 20, 110, 220], "label": "ball"}, {"bbox_2d": [5, 5, 9'
    assert parse_boxes(cut, THOUSAND) == [("ball", pytest.approx([0.01, 0.02, 0.11, 0.22]))]
    swapped = '{"bbox": [900, 800, 100, 1200], "label": "box"} {"bbox_2d": [5, 5, 5, 9], "label": "flat"}'
    assert parse_boxes(swapped, THOUSAND) == [("box", pytest.approx([0.1, 0.8, 0.9, 1.0]))]  # ordered, clipped
    assert parse_boxes("I cannot see any ball.", THOUSAND) == [] and parse_boxes("", PIXELS, (4, 4)) == []


def test_boxes_go_to_the_objects_by_label():
    boxes = [("table", [0, 0.5, 1, 1]), ("the red ball", [0.1, 0.1, 0.2, 0.2]), ("ball", [0.6, 0.1, 0.7, 0.2])]
    got = match(["ball", "wooden table", "dog"], boxes)
    assert got == [[0.6, 0.1, 0.7, 0.2], [0, 0.5, 1, 1], None]  # the exact label first
    assert match(["ball", "ball", "ball"], boxes) == [[0.6, 0.1, 0.7, 0.2], [0.1, 0.1, 0.2, 0.2], None]  # a box once
    assert match(["red ball"], [("", [0.1, 0.1, 0.2, 0.2])]) == [[0.1, 0.1, 0.2, 0.2]]
    assert match(["red ball", "cup"], [("", [0.1, 0.1, 0.2, 0.2])]) == [None, None]


def test_each_model_reads_in_its_own_format():
    assert box_format("qwen2_5_vl") == PIXELS and box_format("qwen3_vl") == THOUSAND
    assert box_format("qwen2_vl") == THOUSAND and box_format("qwen3_vl_moe") == THOUSAND
    assert box_format(None, "Qwen/Qwen2.5-VL-7B-Instruct") == PIXELS and box_format(None, "Qwen/Qwen3-VL-8B") == THOUSAND
    assert qwen_resized(448, 252) == (448.0, 252.0) and qwen_resized(40, 24) == (84.0, 56.0)
    assert "red ball; table" in instruction(["red ball", "table"]) and "bbox_2d" in instruction(["x"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = []
    for i in range(9):
        a = np.zeros((32, 48, 3), np.uint8)
        a[8:20, 4 + 4 * i:16 + 4 * i] = 255
        frames.append(a)
    return write_video(frames, tmp_path_factory.mktemp("loc") / "clip.mp4", 8)


@pytest.mark.parametrize("kind", ["vlm", "qwen2.5-vl"])
def test_locate_asks_a_real_vlm_about_each_keyframe(kind, clip, monkeypatch):
    from phyt2v.captioners import grounding
    from phyt2v.captioners.vlm import VLMCaptioner, seen_size
    from phyt2v.tiny import tiny_model_dir

    cap = VLMCaptioner(str(tiny_model_dir(kind)), num_frames=4, max_new_tokens=8, frame_size=32, device="cpu")
    asked: list = []
    real = grounding.parse_boxes
    monkeypatch.setattr(grounding, "parse_boxes", lambda t, f, s: asked.append((f, s)) or real(t, f, s))
    got = cap.locate(clip, ["white square"], [0.0, 0.5, 1.0])
    assert len(got) == 3 and all(len(d) == 1 for d in got)
    for (b,) in got:  # random weights: no box, or a box inside the frame
        assert b is None or (len(b) == 4 and 0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1)
    fmt = box_format(cap.model.config.model_type)
    assert [f for f, _ in asked] == [fmt] * 3
    if fmt == PIXELS:  # Qwen2.5-VL: pixels of the image its processor made (patch grid x 14)
        assert asked[0][1][0] % 14 == 0 and asked[0][1][1] % 14 == 0
    assert seen_size({}, None, type("I", (), {"width": 5, "height": 7})()) == (5.0, 7.0)


def test_the_served_captioner_locates_through_its_endpoint(clip):
    from llm_servers import chat_body
    from vlm_servers import VisionServer

    from phyt2v.captioners.openai_vlm import OpenAIVLMCaptioner

    class Grounding(VisionServer):
        def answer(self, body, media, text):
            assert text == instruction(["white square"]) and len(media["images"]) == 1
            return chat_body('```json\n[{"bbox_2d": [100, 250, 350, 625], "label": "white square"}]\n```')

    with Grounding(models=("Qwen/Qwen3-VL-8B-Instruct",), max_side=32) as srv:
        cap = OpenAIVLMCaptioner("Qwen/Qwen3-VL-8B-Instruct", base_url=srv.base_url, frame_size=32, timeout_s=5.0)
        got = cap.locate(clip, ["white square"], [0.0, 1.0])
    assert srv.rejected == [] and len(srv.requests) == 2
    assert got == [[pytest.approx([0.1, 0.25, 0.35, 0.625])]] * 2
