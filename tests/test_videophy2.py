"""VideoPhy-2 AutoEval on a tiny random-weight mPLUG-Owl-Video (sharded .bin, as published):
templates, the media-only tokenisation, greedy generation, the reference's number parsing, and
unparseable answers recorded as such."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from phyt2v.scorers.videophy2 import PC_TEMPLATE, RULE_TEMPLATE, SA_TEMPLATE, VideoPhy2Scorer, parse_rating


@pytest.fixture(scope="module")
def scorer(tiny_owl, tmp_path_factory) -> VideoPhy2Scorer:
    import shutil

    from phyt2v.scorers.mplug_owl.loading import load_model, save_model

    model, _ = load_model(tiny_owl)  # the session's tiny checkpoint, re-saved as the published sharded .bin
    folder = save_model(model, tmp_path_factory.mktemp("owl") / "tiny-bin", fmt="bin", shards=2)
    for name in ("tokenizer.model", "preprocessor_config.json"):
        shutil.copy(tiny_owl / name, folder / name)
    assert (folder / "pytorch_model.bin.index.json").is_file()
    return VideoPhy2Scorer(str(folder), device="cpu", dtype="float32", max_new_tokens=6)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    from phyt2v.store.video_io import write_video

    rng = np.random.default_rng(1)
    out = tmp_path_factory.mktemp("vids")
    return [write_video([rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(n)],
                        out / f"v{n}.mp4", fps=8) for n in (12, 40)]


def test_templates_are_byte_exact():
    head = ("The following is a conversation between a curious human and an AI assistant. The assistant gives "
            "helpful, detailed, and polite answers to the user's questions.\nHuman: <|video|>\n")
    assert SA_TEMPLATE.format(caption="A ball.") == head + (
        'Human: Does this video match the description: "A ball."? Please rate the video on a scale from 1 to 5, '
        "where 5 indicates a perfect match and 1 indicates no relevance.\nAI: ")
    assert PC_TEMPLATE == head + (
        "Human: Does this video adhere to the physical laws? Rate the video on a scale from 1 to 5, where 5 means "
        "full compliance and 1 means significant violations.\nAI: ")
    assert RULE_TEMPLATE.format(rule="Mass is conserved.") == head + (
        'Human: Does the video follow the physical rule: "Mass is conserved."?\n'
        "Choose 0 if not, 1 if valid, or 2 if indeterminate. \nAI: ")


@pytest.mark.parametrize("text,want", [("4", 4), (" Five.", 5), ("I rate it 3 out of 5", 3), ("0", 0),
                                       ("none", 1),  # the reference finds "one" inside "none"
                                       ("two, maybe 5", 2), ("", None), ("seven", None), ("9", None)])
def test_parse_rating_follows_the_reference(text, want):
    assert parse_rating(text) == want


def test_tokenisation_splits_on_the_media_marker_only(scorer):
    tok = scorer.runtime.tokenizer
    ids = scorer.token_ids("A ball.")["sa"]
    head = ("The following is a conversation between a curious human and an AI assistant. The assistant gives "
            "helpful, detailed, and polite answers to the user's questions.\nHuman: ")
    tail = SA_TEMPLATE.format(caption="A ball.").split("<|video|>")[1]
    assert ids == [tok.bos_id] + tok.encode(head) + [-2] * 65 + tok.encode(tail)
    assert "rule" not in scorer.token_ids("A ball.") and "rule" in scorer.token_ids("A ball.", "Gravity.")


def _forcing(scorer, plan: dict[int, list[int]]):
    """An lm_head hook making row r emit plan[r] (then EOS): controlled greedy answers."""
    eos = scorer.runtime.tokenizer.eos_id
    step = {"n": 0}

    def hook(module, args, output):
        out = torch.full_like(output, -30.0)
        for row in range(out.shape[0]):
            seq = plan.get(row, [])
            out[row, -1, seq[step["n"]] if step["n"] < len(seq) else eos] = 30.0
        step["n"] += 1
        return out
    return scorer.runtime.model.language_model.lm_head.register_forward_hook(hook)


def test_ratings_from_controlled_answers(scorer, videos):
    sp = scorer.runtime.tokenizer.sp
    four, yes, one = sp.piece_to_id("4"), sp.piece_to_id("▁Yes"), sp.piece_to_id("1")
    handle = _forcing(scorer, {0: [four], 1: [yes], 2: [one]})  # rows: sa, pc, rule
    try:
        s = scorer.score(videos[0], "Noise on a screen.", rule="Noise stays noise.")
    finally:
        handle.remove()
    assert s.extra["sa_answer"] == "4" and s.extra["sa_rating"] == 4 and s.sa == pytest.approx(0.75)
    assert s.extra["pc_answer"] == "Yes" and s.extra["pc_rating"] is None and math.isnan(s.pc)
    assert s.extra["unparseable"] == ["pc"]
    assert s.extra["rule_rating"] == 1


def test_generation_is_greedy_bounded_and_parsed_as_recorded(scorer, videos):
    s = scorer.score(videos[1], "Noise on a screen.")
    assert s.extra["video_frames"] == 40
    for key, val in (("sa", s.sa), ("pc", s.pc)):
        answer, rating = s.extra[f"{key}_answer"], s.extra[f"{key}_rating"]
        assert answer and rating == parse_rating(answer)
        assert math.isnan(val) if rating is None else val == (rating - 1) / 4
    assert s.extra["unparseable"] == [k for k in ("sa", "pc") if s.extra[f"{k}_rating"] is None]
    scorer.max_new_tokens = 2
    try:
        short = scorer.score(videos[1], "Noise on a screen.")
    finally:
        scorer.max_new_tokens = 6
    for key in ("sa", "pc"):  # greedy: the 2-token answer begins the 6-token one
        a, b = short.extra[f"{key}_answer"], s.extra[f"{key}_answer"]
        assert a and len(a) < len(b) and b.startswith(a.rstrip("\ufffd"))


def test_left_padded_batch_generates_what_single_videos_do(scorer, videos):
    items = [scorer.prepare(videos[0], "Noise."), scorer.prepare(videos[1], "A much longer caption about the noise.")]
    batch = scorer.score_prepared(items)
    for it, b in zip(items, batch):
        one = scorer.score_prepared([it])[0]
        assert (b.extra["sa_answer"], b.extra["pc_answer"]) == (one.extra["sa_answer"], one.extra["pc_answer"])
