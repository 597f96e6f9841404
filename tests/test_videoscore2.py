"""The VideoScore2 scorer: the model card's reply format read exactly (ratings, soft scores, rationale), an
unparseable reply (NaN: an error row in ``phyt2v score``, a failed step in the loop), the card's 2-fps frame
sampling, the memory plan, and the real path end to end on the tiny Qwen2.5-VL that answers in the card's format."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from doubles import FakeCaptioner, FakeGenerator, physics_llm  # noqa: E402

from phyt2v.config import load_config  # noqa: E402
from phyt2v.errors import Phyt2vError  # noqa: E402
from phyt2v.scorers import vs2_reply as reply  # noqa: E402
from phyt2v.store.record import RunStore  # noqa: E402
from phyt2v.vlm import video as vv  # noqa: E402

PROMPT = "An apple falls and bounces on the hard ground."


# ---------------------------------------------------------------- the reply, as the card reads it

@pytest.mark.parametrize("text,ratings", [
    ("visual quality: 4; text-to-video alignment: 3, physical/common-sense consistency: 2", (4, 3, 2)),
    ("visual quality: 4; \ntext-to-video alignment: 3, \nphysical/common-sense consistency: 2\n", (4, 3, 2)),
    ("<think>The apple falls, but it bounces higher than it fell.</think>\nvisual quality: 5;\n"
     "text-to-video alignment: 4,\nphysical/common-sense consistency: 1", (5, 4, 1)),
    ("Visual Quality: 3; Text-to-Video Alignment: 3, Physical/Common-Sense Consistency: 5", (3, 3, 5)),
])
def test_replies_in_the_cards_format_are_read_exactly(text, ratings):
    r = reply.read_reply(text)
    assert tuple(r.ratings[k] for k in ("visual", "sa", "pc")) == ratings and r.unparseable == []


def test_the_rationale_is_the_reply_without_the_ratings_and_think_tags():
    text = ("<think>The apple falls, but it bounces higher than it fell.</think>\nvisual quality: 5;\n"
            "text-to-video alignment: 4,\nphysical/common-sense consistency: 1")
    assert reply.read_reply(text).rationale == "The apple falls, but it bounces higher than it fell."


@pytest.mark.parametrize("text,missing", [
    ("", ["visual", "sa", "pc"]),
    ("The video shows an apple.", ["visual", "sa", "pc"]),
    ("visual quality: 4; text-to-video alignment: 3,", ["visual", "sa", "pc"]),  # cut before the third
    ("visual quality: 7; text-to-video alignment: 3, physical/common-sense consistency: 2", ["visual"]),
    ("visual quality: 4; text-to-video alignment: 0, physical/common-sense consistency: 2", ["sa"]),
])
def test_a_reply_without_usable_ratings_is_unparseable_never_zero(text, missing):
    from phyt2v.scorers.videoscore2 import scores_of

    r = reply.read_reply(text)
    assert r.unparseable == missing
    s = scores_of(r, text)
    assert math.isnan(s.sa) and math.isnan(s.pc) and s.extra["unparseable"] == missing


def test_soft_score_is_the_cards_normed_likelihood():
    digits = {1: 11, 2: 12, 3: 13, 4: 14, 5: 15}
    probs = torch.full((20,), 1e-12)
    for d, p in zip(range(1, 6), (0.05, 0.10, 0.20, 0.10, 0.05)):  # half the mass on the digits, 3 the likeliest
        probs[digits[d]] = p
    probs[0] = 0.5
    logits = probs.log()
    assert reply.soft_score(3, logits, digits) == pytest.approx(3 * 0.20 / 0.50, abs=1e-4)
    assert reply.soft_score(None, logits, digits) is None and reply.soft_score(3, None, digits) is None
    assert reply.unit(5) == 1.0 and reply.unit(1) == 0.0 and reply.unit(3.0) == 0.5 and reply.unit(0.6) == 0.0
    assert math.isnan(reply.unit(None))


def digit_tokenizer():
    """One token per character, decoded back to the exact text: every digit a token of its own (as Qwen's
    tokenizer writes a rating)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("visual quality: text-to-video alignment physical/common-sense consistency no ratings 12345;,"))
    tk = Tokenizer(models.WordLevel({c: i for i, c in enumerate(["<unk>"] + chars)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>")


@pytest.mark.parametrize("merged", [True, False])
def test_the_rating_token_is_found_whether_digits_are_tokens_of_their_own_or_not(merged):
    from phyt2v.tiny.qwen25vl import judge_tokenizer

    tok = judge_tokenizer() if merged else digit_tokenizer()  # "4," as one token, or "4" then ","
    text = "visual quality: 2; text-to-video alignment: 4, physical/common-sense consistency: 5"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    decode = lambda part: tok.decode(part, skip_special_tokens=False)  # noqa: E731
    found = {k: reply.score_token_index(label, decode, ids) for k, label in reply.LABELS.items()}
    held = {k: tok.decode([ids[i]]).strip() for k, i in found.items()}
    assert held == ({"visual": "2;", "sa": "4,", "pc": "5"} if merged else {"visual": "2", "sa": "4", "pc": "5"})
    none = tok("no ratings", add_special_tokens=False)["input_ids"]
    assert reply.score_token_index("visual quality:", decode, none) == -1


def test_the_query_is_the_cards_template():
    q = reply.query(PROMPT)
    assert q.startswith("\n    You are an expert for evaluating AI-generated videos from three dimensions:\n")
    assert f"    Video prompt: {PROMPT}\n" in q
    assert q.endswith("    visual quality: <v_score>; \n    text-to-video alignment: <t_score>, \n"
                      "    physical/common-sense consistency: <p_score>\n    ")


# ---------------------------------------------------------------- 2-fps sampling (qwen-vl-utils' rules)

@pytest.mark.parametrize("total,fps,n", [(49, 8.0, 12), (81, 16.0, 10), (9, 8.0, 4), (3, 8.0, 2), (1, 8.0, 1),
                                         (2000, 10.0, 400), (4000, 10.0, 768), (72, 24.0, 6), (60, 8.0, 14)])
def test_frame_count_at_2_fps_follows_qwen_vl_utils(total, fps, n):
    assert vv.frame_count_at_fps(total, fps, 2.0) == n


@pytest.mark.parametrize("total,n", [(49, 12), (81, 10), (72, 6), (9, 4), (5, 5)])
def test_frame_indices_are_torch_linspace_rounded(total, n):
    assert vv.linspace_indices(total, n) == torch.linspace(0, total - 1, n).round().long().tolist()


def test_frames_at_2_fps_keep_the_cards_pixel_range(sample_videos):
    big = next(v for v in sample_videos if v.name.startswith("A_spatula"))  # 72 frames, 24 fps, 1088x640
    small = next(v for v in sample_videos if v.name.startswith("An_apple"))  # 32 frames, 8 fps, 256x256
    frames, rate = vv.frames_at_fps(big, 2.0)
    assert len(frames) == 6 and rate == pytest.approx(2.0)
    assert all(f.width * f.height <= vv.VIDEO_MAX_PIXELS * 1.01 for f in frames) and frames[0].width > frames[0].height
    frames, rate = vv.frames_at_fps(small, 2.0)
    assert len(frames) == 8 and all(f.width * f.height >= vv.VIDEO_MIN_PIXELS * 0.99 for f in frames)
    frames, _ = vv.frames_at_fps(small, 2.0, num_frames=3, frame_size=32)
    assert len(frames) == 3 and max(frames[0].size) == 32


# ---------------------------------------------------------------- the memory plan

def test_memory_plan_counts_videoscore2_as_qwen25vl_7b_in_bf16():
    from phyt2v.runtime import memplan, paramcount
    from phyt2v.scorers.videoscore2 import VideoScore2Scorer

    cfg = load_config(captioner={"model": "Qwen/Qwen2.5-VL-7B-Instruct"}, scorer={"backend": "videoscore2"})
    plan = memplan.make_plan(cfg, 80 * memplan.GiB)
    e = plan.roles["scorer"]
    assert e.model == "TIGER-Lab/VideoScore2" and e.source == "table"
    assert e.bytes == paramcount.PUBLISHED["Qwen/Qwen2.5-VL-7B-Instruct"]["model"] * 2
    assert e.work_bytes == VideoScore2Scorer.work_bytes > memplan.VLM_WORK


# ---------------------------------------------------------------- the real path on the tiny Qwen2.5-VL

@pytest.fixture(scope="module")
def tiny_scorer():
    from phyt2v.scorers.videoscore2 import VideoScore2Scorer

    return VideoScore2Scorer("tiny", device="cpu", dtype="float32", num_frames=4, frame_size=32, temperature=0.0)


def test_tiny_qwen25vl_reply_goes_through_the_real_parse_path(tiny_scorer, sample_videos):
    s = tiny_scorer
    item = s.prepare(sample_videos[0], PROMPT)
    ids, steps, text = s.generate(item.inputs)
    ratings = reply.parse_ratings(text)
    assert None not in ratings.values() and type(s.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    # an independent reading of the soft scores: one teacher-forced forward pass over prompt + reply (greedy: the
    # generation's scores are these raw logits), the digit token found in the decoded reply
    full = torch.cat([item.inputs["input_ids"], torch.tensor([ids])], dim=1)
    forward = {**item.inputs, "input_ids": full, "attention_mask": torch.ones_like(full)}
    if "mm_token_type_ids" in item.inputs:  # the reply holds no image token
        forward["mm_token_type_ids"] = torch.cat([item.inputs["mm_token_type_ids"], torch.zeros(1, len(ids)).long()], 1)
    with torch.no_grad():
        logits = s.model(**forward).logits[0]
    start = item.inputs["input_ids"].shape[1]
    digits = reply.digit_token_ids(s.tokenizer)
    got = s.score_prepared([item])[0]
    for key, label in reply.LABELS.items():
        i = reply.score_token_index(label, lambda p: s.tokenizer.decode(p, skip_special_tokens=False), ids)
        assert str(ratings[key]) in s.tokenizer.decode([ids[i]])
        soft = reply.soft_score(ratings[key], logits[start + i - 1], digits)
        assert got.extra[f"{key}_soft"] == pytest.approx(soft, abs=2e-3)
        assert got.extra[f"{key}_rating"] == ratings[key]
    assert got.sa == pytest.approx(reply.unit(got.extra["sa_soft"]))
    assert got.pc == pytest.approx(reply.unit(got.extra["pc_soft"]))
    assert got.extra["visual"] == pytest.approx(reply.unit(got.extra["visual_soft"]))
    assert got.extra["reply"] == text and got.extra["sampled_frames"] == 4


def test_sampling_as_the_card_is_seeded_so_a_rerun_reads_the_same(sample_videos):
    from phyt2v.scorers.videoscore2 import TEMPERATURE, VideoScore2Scorer

    assert TEMPERATURE == 0.7  # the card's; hotter here so that the tiny model's seeds visibly differ
    s = VideoScore2Scorer("tiny", device="cpu", dtype="float32", num_frames=4, frame_size=32, temperature=1.5)
    item = s.prepare(sample_videos[1], PROMPT)
    replies = {}
    for seed in range(6):
        s.seed = seed
        replies[seed] = [s.score_prepared([item])[0].extra["reply"] for _ in range(2)]
    assert all(a == b for a, b in replies.values())  # each seed reads the same twice
    assert len({a for a, _ in replies.values()}) > 1  # and sampling is on: the seeds do not all agree


def test_a_cut_reply_is_an_error_row_in_phyt2v_score(tmp_path, sample_videos):
    import csv

    from typer.testing import CliRunner

    from phyt2v.cli.app import app

    out = tmp_path / "rows.csv"
    r = CliRunner().invoke(app, ["score", str(sample_videos[0]), "--prompt", PROMPT, "--scorer", "videoscore2",
                                 "--preset", "smoke", "--set", "scorer.options={max_new_tokens: 3}", "--out", str(out)])
    assert r.exit_code == 1, r.output
    [row] = list(csv.DictReader(out.open()))
    assert row["sa"] == "" and row["pc"] == "" and row["error"].startswith("unparseable reply (visual, sa, pc)")
    assert "visual quality:" in row["error"] and "scored 0/1 videos with videoscore2" in " ".join(r.output.split())


def test_a_cut_reply_fails_the_loops_score_step(tmp_path):
    from phyt2v.loop import Refiner

    cfg = load_config("smoke", scorer={"backend": "videoscore2", "options": {"max_new_tokens": 3}},
                      loop={"max_rounds": 1, "min_rounds": 1}, out=str(tmp_path))
    ref = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner())
    with pytest.raises(Phyt2vError, match="no usable SA"):
        ref.refine(PROMPT)
    rec = RunStore(ref.run_dir(PROMPT)).load()
    assert rec.status == "failed" and rec.error.step == "score" and "'sa'" in rec.error.message
    assert rec.rounds[0].scores is None and "score" not in rec.rounds[0].done


def test_unknown_options_and_bad_values_are_refused():
    from phyt2v import registry
    from phyt2v.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="unknown scorer.options"):
        registry.build("scorer", load_config("smoke", scorer={"backend": "videoscore2", "options": {"topk": 3}}),
                       cache=False)
    with pytest.raises(InputError, match="options.score"):
        registry.build("scorer", load_config("smoke", scorer={"backend": "videoscore2", "options": {"score": "x"}}),
                       cache=False)
