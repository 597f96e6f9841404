"""VideoCon-Physics on a tiny random-weight mPLUG-Owl-Video saved and loaded back through the
real loader: module names, shapes, templates, the 65-position media layout, Yes/No arithmetic,
frame sampling on a real video, and the reference_truncation switch."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from phyt2v.scorers.mplug_owl.processor import CLIP_MEAN, CLIP_STD, frame_indices, load_frames, to_pixels
from phyt2v.scorers.videocon import PC_TEMPLATE, SA_TEMPLATE, VideoConScorer, yes_no_probability  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/videos is absent (sample videos)")
VIDEO = SHARED / "Shoe_squishes_a_bug._0.mp4"


@pytest.fixture(scope="module")
def scorer(tiny_owl) -> VideoConScorer:
    return VideoConScorer(str(tiny_owl), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    from phyt2v.store.video_io import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(8)]
    return write_video(frames, tmp_path_factory.mktemp("vid") / "short.mp4", fps=8)


def _expected_keys(vision_layers: int, abstractor_layers: int, llm_layers: int) -> list[str]:
    """The published checkpoint's parameter names, written out from the architecture."""
    keys = ["query_tokens", "temporal_query_tokens",
            "vision_model.embeddings.cls_token", "vision_model.embeddings.patch_embed.weight",
            "vision_model.embeddings.position_embedding",
            "vision_model.embeddings.pre_layernorm.weight", "vision_model.embeddings.pre_layernorm.bias",
            "vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
            "abstractor.visual_fc.weight", "abstractor.visual_fc.bias",
            "abstractor.temporal_visual_fc.weight", "abstractor.temporal_visual_fc.bias", "abstractor.vit_eos",
            "language_model.model.embed_tokens.weight", "language_model.model.norm.weight",
            "language_model.lm_head.weight"]
    for i in range(vision_layers):
        p = f"vision_model.encoder.layers.{i}."
        for m in ("temporal.ln", "temporal.down_proj", "temporal.conv", "temporal.up_proj",
                  "self_attn.query_key_value", "self_attn.dense", "input_layernorm", "mlp.fc1", "mlp.fc2",
                  "post_attention_layernorm"):
            keys += [p + m + ".weight", p + m + ".bias"]
    for i in range(abstractor_layers):
        p = f"abstractor.encoder.layers.{i}.crossattention."
        for m in ("attention.query", "attention.key", "attention.value", "output.out_proj", "output.norm2",
                  "output.mlp.w1", "output.mlp.w2", "output.mlp.w3", "output.mlp.ffn_ln", "norm1", "normk"):
            keys += [p + m + ".weight", p + m + ".bias"]
    for i in range(llm_layers):
        p = f"language_model.model.layers.{i}."
        keys += [p + m + ".weight" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                             "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                                             "input_layernorm", "post_attention_layernorm")]
    return keys


def test_module_tree_matches_published_names(scorer, tiny_owl):
    from safetensors import safe_open

    expected = sorted(_expected_keys(2, 2, 2))
    assert sorted(scorer.runtime.model.state_dict().keys()) == expected
    with safe_open(str(tiny_owl / "model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == expected


def test_full_size_architecture_shapes():
    from phyt2v.scorers.mplug_owl.config import MplugOwlConfig
    from phyt2v.scorers.mplug_owl.model import MplugOwlForConditionalGeneration

    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(MplugOwlConfig())
    sd = model.state_dict()
    assert sorted(sd) == sorted(_expected_keys(24, 6, 32))
    shapes = {"vision_model.embeddings.patch_embed.weight": (1024, 3, 14, 14),
              "vision_model.embeddings.position_embedding": (1, 257, 1024),
              "vision_model.encoder.layers.0.temporal.conv.weight": (512, 1, 3, 1, 1),
              "vision_model.encoder.layers.0.self_attn.query_key_value.weight": (3072, 1024),
              "abstractor.encoder.layers.0.crossattention.output.mlp.w1.weight": (2816, 1024),
              "abstractor.encoder.layers.0.crossattention.output.mlp.ffn_ln.weight": (2816,),
              "abstractor.visual_fc.weight": (4096, 1024), "abstractor.vit_eos": (1, 1, 4096),
              "query_tokens": (1, 64, 1024), "language_model.model.embed_tokens.weight": (32000, 4096),
              "language_model.lm_head.weight": (32000, 4096)}
    for name, shape in shapes.items():
        assert tuple(sd[name].shape) == shape, name


def test_templates_are_byte_exact():
    prefix = ("The following is a conversation between a curious human and AI assistant. The assistant gives "
              "helpful, detailed, and polite answers to the user's questions.\nHuman: <|video|>\nHuman: ")
    assert SA_TEMPLATE.format(caption="A ball.") == prefix + 'Does this video entail the description: "A ball."?\nAI: '
    assert PC_TEMPLATE == prefix + "Does this video follow the physical laws?\nAI: "


def test_media_layout_and_tokenisation(scorer):
    tok = scorer.runtime.tokenizer
    ids = scorer.token_ids("A ball rolls.")["sa"]
    enc = tok.encode
    expected = ([tok.bos_id] + enc("The following is a conversation between a curious human and AI assistant. "
                                   "The assistant gives helpful, detailed, and polite answers to the user's questions.")
                + enc("\nHuman: ") + [-2] * 65 + enc("\nHuman: ")
                + enc('Does this video entail the description: "A ball rolls."?\n') + enc("AI: "))
    assert ids == expected
    assert ids.count(-2) == 65 and ids[-1] != tok.eos_id
    start = ids.index(-2)
    assert ids[start:start + 65] == [-2] * 65
    # the embedded sequence carries the abstractor output exactly at those 65 positions
    model = scorer.runtime.model
    pixels = torch.randn(1, 3, 32, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        media = model.encode_video(pixels)
        emb = model.embed(torch.tensor([ids]), media)
        table = model.language_model.get_input_embeddings().weight
    assert media.shape == (1, 65, 64)
    assert torch.equal(emb[0, start:start + 65], media[0])
    assert torch.equal(emb[0, :start], table[torch.tensor(ids[:start])])
    assert torch.equal(emb[0, start + 65:], table[torch.tensor(ids[start + 65:])])


def test_yes_no_arithmetic_matches_softmax_ratio():
    logits = torch.tensor([[3.0, 0.5, -1.0, 7.0], [-2.0, 1.0, 0.0, 0.0]])
    p = yes_no_probability(logits, yes_id=1, no_id=2)
    soft = torch.softmax(logits, dim=-1)
    assert torch.allclose(p, soft[:, 1] / (soft[:, 1] + soft[:, 2]), atol=1e-6)
    assert p[0].item() == pytest.approx(1 / (1 + math.exp(-1.5)), abs=1e-6)


@needs_shared
def test_scores_with_controlled_logits(scorer):
    yes, no = scorer.yes_id, scorer.no_id
    assert yes != no

    def force(module, args, output):  # rows: SA first, then PC
        out = torch.zeros_like(output)
        out[:, 0] = 10.0  # a large competing token must not change the ratio
        out[0, yes], out[0, no] = 2.0, 0.0
        out[1, yes], out[1, no] = -1.0, 1.0
        return out

    handle = scorer.runtime.model.language_model.lm_head.register_forward_hook(force)
    try:
        s = scorer.score(VIDEO, "Shoe squishes a bug.")
    finally:
        handle.remove()
    assert s.sa == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-6) and s.extra["sa_pass"] is True
    assert s.pc == pytest.approx(1 / (1 + math.exp(2.0)), abs=1e-6) and s.extra["pc_pass"] is False


@needs_shared
def test_score_is_read_at_the_last_real_position(scorer):
    s = scorer.score(VIDEO, "Shoe squishes a bug.")
    item = scorer.prepare(VIDEO, "Shoe squishes a bug.")
    model = scorer.runtime.model
    with torch.no_grad():
        media = model.encode_video(item.pixels[None])
        logits = model.language_model(inputs_embeds=model.embed(torch.tensor([item.ids["sa"]]), media)).logits
    assert s.extra["sa_position"] == len(item.ids["sa"]) - 1
    assert s.extra["sa_logit_yes"] == pytest.approx(logits[0, -1, scorer.yes_id].item(), abs=1e-4)
    assert 0.0 <= s.sa <= 1.0 and 0.0 <= s.pc <= 1.0


@needs_shared
def test_frame_indices_on_a_real_video():
    from phyt2v.store.video_io import read_frames

    full, _ = read_frames(VIDEO)
    frames, idx, n = load_frames(VIDEO, 32, 224)
    assert n == len(full)
    seg = (n - 1) / 32
    assert idx == [int(seg / 2) + int(np.round(seg * k)) for k in range(32)]
    assert frames.shape == (32, 224, 224, 3) and frames.dtype == np.uint8
    from PIL import Image  # the frame is the whole picture squeezed to 224x224, not a crop

    ref = np.asarray(Image.fromarray(full[idx[5]]).resize((224, 224), Image.BICUBIC)).astype(float)
    assert np.abs(frames[5].astype(float) - ref).mean() < 12.0
    px = to_pixels(frames, CLIP_MEAN, CLIP_STD)
    assert px.shape == (3, 32, 224, 224)
    want = (frames[3, 10, 20, 1] / 255.0 - CLIP_MEAN[1]) / CLIP_STD[1]
    assert px[1, 3, 10, 20].item() == pytest.approx(want, abs=1e-5)


def test_frame_indices_repeat_for_short_videos(short_video, scorer):
    assert frame_indices(8, 32) == [int(round(7 / 32 * k)) for k in range(32)]
    assert frame_indices(1, 32) == [0] * 32
    s = scorer.score(short_video, "Noise.")
    assert s.extra["video_frames"] == 8 and 0.0 <= s.sa <= 1.0


@needs_shared
def test_reference_truncation_moves_the_scored_position(tiny_owl, scorer):
    caption = " ".join(["A ball rolls down a slanted ramp while water pours from a glass into a bowl."] * 12)
    cut = VideoConScorer(str(tiny_owl), device="cpu", dtype="float32", reference_truncation=True)
    full_ids = scorer.token_ids(caption)["sa"]
    cut_ids = cut.token_ids(caption)["sa"]
    assert len(full_ids) > 257 and cut_ids == full_ids[:257]
    a, b = scorer.score(VIDEO, caption), cut.score(VIDEO, caption)
    assert a.extra["sa_position"] == len(full_ids) - 1 and a.extra["truncated"] is False
    assert b.extra["sa_position"] == 256 and b.extra["truncated"] is True
    assert a.sa != b.sa
    assert a.pc == pytest.approx(b.pc, abs=1e-6)  # the PC prompt is short: unchanged


@needs_shared
def test_batch_scores_equal_single_scores(scorer, short_video):
    items = [(VIDEO, "Shoe squishes a bug."), (short_video, "A much longer caption about noise on a screen.")]
    prepared = [scorer.prepare(v, p) for v, p in items]
    batch = scorer.score_prepared(prepared)
    for (v, p), b in zip(items, batch):
        one = scorer.score(v, p)
        assert b.sa == pytest.approx(one.sa, abs=1e-5) and b.pc == pytest.approx(one.pc, abs=1e-5)
