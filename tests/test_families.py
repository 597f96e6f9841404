"""The diffusers backend on tiny random-weight Wan, LTX-Video and HunyuanVideo pipelines, CPU, offline:
family facts, token budgets against each pipeline's own encoding, shapes refused before load, speed
knobs, Wan 2.2's second expert, and one load per load-time settings."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry  # noqa: E402
from phyt2v.config import load_config  # noqa: E402
from phyt2v.errors import ConfigError  # noqa: E402
from phyt2v.generators.diffusers_gen import DiffusersGenerator  # noqa: E402
from phyt2v.store.video_io import probe, read_frames  # noqa: E402

SIZE = {"tiny-wan": 16, "tiny-ltx": 32, "tiny-hunyuan": 16}
LONG = "a red ball falls onto the wooden floor and bounces " * 60  # 600 words: over every budget


@pytest.fixture(scope="module")
def gens():
    return {m: DiffusersGenerator(m, num_frames=9, steps=2, height=s, width=s, device="cpu") for m, s in SIZE.items()}


def test_family_facts_come_from_the_pipeline(gens):
    facts = {m: (g.family.name, type(g.pipe).__name__, g.defaults, g.rules) for m, g in gens.items()}
    assert facts["tiny-wan"][:2] == ("wan", "WanPipeline")
    # the published defaults, read from each __call__ signature (fps: the family's table)
    assert facts["tiny-wan"][2] == dict(height=480, width=832, num_frames=81, steps=50, guidance=5.0, fps=16)
    assert facts["tiny-ltx"][2] == dict(height=512, width=704, num_frames=161, steps=50, guidance=3, fps=25)
    assert facts["tiny-hunyuan"][2] == dict(height=720, width=1280, num_frames=129, steps=50, guidance=6.0, fps=24)
    # frame rule and spatial multiple read from the tiny VAE / transformer configs
    assert facts["tiny-wan"][3] == (4, 16) and facts["tiny-ltx"][3] == (4, 32) and facts["tiny-hunyuan"][3] == (4, 8)
    # HunyuanVideo: the Llama encoder's 256 tokens bind; CLIP-L's 77 only feed the pooled vector
    assert {m: g.model_limit for m, g in gens.items()} == {"tiny-wan": 512, "tiny-ltx": 128, "tiny-hunyuan": 256}


@pytest.mark.parametrize("model", list(SIZE))
def test_generate_renders_the_frames_asked_for(gens, model, tmp_path):
    g = gens[model]
    steps = []
    out = g.generate("A ball falls onto the floor", seed=1, out_path=tmp_path / "v.mp4",
                     on_step=lambda i, n: steps.append((i, n)))
    info = probe(out.path)
    s = SIZE[model]
    assert (info.num_frames, info.width, info.height) == (9, s, s) and steps == [(1, 2), (2, 2)]
    assert (out.num_frames, out.fps, out.family) == (9, g.defaults["fps"], g.family.name)
    assert out.token_counts and out.knobs["offload"] == "none"


def _kept(mask) -> int:
    return int(mask.sum())


@pytest.mark.parametrize("prompt", ["A glass of water tips over and the water spills onto the table", LONG])
def test_token_counts_match_each_pipelines_own_encoding(gens, prompt):
    import torch

    wan, ltx, hy = gens["tiny-wan"], gens["tiny-ltx"], gens["tiny-hunyuan"]
    with torch.no_grad():
        # Wan: embeddings past the prompt's tokens are zeroed by the pipeline
        emb = wan.pipe._get_t5_prompt_embeds(prompt, max_sequence_length=512)
        assert int((emb[0].abs().sum(-1) > 0).sum()) == min(wan.count_tokens(prompt), 512)
        _, mask = ltx.pipe._get_t5_prompt_embeds(prompt, max_sequence_length=128)
        assert _kept(mask) == min(ltx.count_tokens(prompt), 128)
        # HunyuanVideo: the Llama encoder after the template crop, and CLIP's 77
        sig = hy.sig
        _, mask = hy.pipe._get_llama_prompt_embeds(prompt, sig["prompt_template"], max_sequence_length=256)
        counts = hy.token_counts(prompt)
        assert _kept(mask) == min(counts["text_encoder"], 256)
        clip_ids = hy.pipe.tokenizer_2(prompt, padding="max_length", max_length=77, truncation=True).input_ids
        assert counts["text_encoder_2"] >= len([i for i in clip_ids if i != hy.pipe.tokenizer_2.pad_token_id])
    assert hy.count_tokens(prompt) == counts["text_encoder"]  # the Llama encoder's 256 is the binding budget
    long = prompt == LONG
    for g in gens.values():
        assert any(g.token_counts(prompt)[e.name] > e.limit for e in g.encoders) is long


def test_hunyuan_budget_is_the_llama_encoders_and_clip_is_recorded_not_binding(gens, tmp_path):
    """A prompt between CLIP's 77 and Llama's 256 tokens is within the budget; CLIP's cut is recorded."""
    hy = gens["tiny-hunyuan"]
    prompt = "a red ball falls onto the wooden floor and bounces " * 12  # 120 words
    counts = hy.token_counts(prompt)
    assert 77 < counts["text_encoder_2"] and 77 < counts["text_encoder"] <= 256
    assert hy.count_tokens(prompt) == counts["text_encoder"] <= hy.max_prompt_tokens == 256
    d = hy.describe()
    assert d["token_budget"] == 256 and d["encoders"] == {"text_encoder": 256, "text_encoder_2": 77}
    assert d["pooled_only"] == ["text_encoder_2"]
    out = hy.generate(prompt, seed=0, out_path=tmp_path / "v.mp4")
    assert out.truncated is True and out.prompt_tokens == counts["text_encoder"]  # CLIP cut it; Llama did not
    short = hy.generate("A ball falls", seed=0, out_path=tmp_path / "s.mp4")
    assert short.truncated is False


@pytest.mark.parametrize("model, kw, match", [
    ("tiny-wan", {"num_frames": 10}, r"generator.num_frames 10 must be 4k\+1 .* e.g. 9 or 13"),
    ("tiny-wan", {"height": 24}, r"generator.height 24 must be a multiple of 16 .* e.g. 16 or 32"),
    ("tiny-ltx", {"width": 48}, r"generator.width 48 must be a multiple of 32 .* e.g. 32 or 64"),
    ("tiny-hunyuan", {"num_frames": 12}, r"generator.num_frames 12 must be 4k\+1"),
    ("tiny-ltx", {"flow_shift": 3.0}, r"generator.flow_shift does not apply to ltx"),
    ("tiny-wan", {"decode_timestep": 0.03}, r"generator.decode_timestep does not apply to wan"),
    ("tiny-hunyuan", {"dynamic_cfg": True}, r"generator.dynamic_cfg does not apply to hunyuanvideo"),
])
def test_bad_settings_refused_before_weights_load(gens, monkeypatch, model, kw, match):
    gens[model]  # the tiny folder exists
    monkeypatch.setattr(DiffusersGenerator, "_load", lambda self, path: pytest.fail("weights were loaded"))
    base = dict(num_frames=9, steps=2, height=SIZE[model], width=SIZE[model], device="cpu")
    with pytest.raises(ConfigError, match=match):
        DiffusersGenerator(model, **{**base, **kw})


def test_attention_backend_refused_where_the_family_ignores_it(gens):
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    with pytest.raises(ConfigError, match="cogvideox's attention does not go through"):
        CogVideoXGenerator("tiny", num_frames=9, steps=2, height=16, width=16, attention_backend="native")
    g = DiffusersGenerator("tiny-wan", pipeline=gens["tiny-wan"].pipe, num_frames=9, steps=2, height=16,
                           width=16, attention_backend="native")
    assert g.knobs["attention_backend"] == "native"
    proc = g.pipe.transformer.blocks[0].attn1.processor
    assert getattr(proc, "_attention_backend", None) == "native"
    g.pipe.transformer.reset_attention_backend()


def _frames(path):
    frames, _ = read_frames(path)
    return np.stack(frames).astype(np.int16)


def test_first_block_cache_on_and_off(tmp_path):
    """A cache hook is load-time (its settings reload the pipeline); off gives back the uncached video."""
    registry.clear_cache()
    base = ["generator.backend=diffusers", "generator.model=tiny-wan", "generator.num_frames=9", "generator.steps=4",
            "generator.height=16", "generator.width=16", "generator.device=cpu"]
    try:
        plain = registry.build("generator", load_config(overrides=base))
        a = plain.generate("A ball falls", seed=0, out_path=tmp_path / "a.mp4")
        assert not plain.pipe.transformer.is_cache_enabled
        cached = registry.build("generator", load_config(overrides=base + [
            "generator.cache={kind: first-block, params: {threshold: 1000.0}}"]))
        assert cached.pipe is not plain.pipe and cached.pipe.transformer.is_cache_enabled
        assert cached.knobs["cache"] == {"kind": "first-block", "threshold": 1000.0}
        b = cached.generate("A ball falls", seed=0, out_path=tmp_path / "b.mp4")
        assert b.knobs["cache"]["kind"] == "first-block"
        assert not np.array_equal(_frames(a.path), _frames(b.path))  # blocks after the first were skipped
        off = registry.build("generator", load_config(overrides=base))
        assert not off.pipe.transformer.is_cache_enabled
        c = off.generate("A ball falls", seed=0, out_path=tmp_path / "c.mp4")
        assert np.array_equal(_frames(a.path), _frames(c.path))
    finally:
        registry.clear_cache()


def test_call_time_settings_reuse_the_loaded_pipeline(tmp_path):
    registry.clear_cache()
    base = ["generator.backend=diffusers", "generator.model=tiny-wan", "generator.height=16", "generator.width=16",
            "generator.device=cpu", "generator.num_frames=9"]
    try:
        before = registry.LOADS["generator"]
        a = registry.build("generator", load_config(overrides=base + ["generator.steps=2"]))
        b = registry.build("generator", load_config(overrides=base + ["generator.steps=3", "generator.num_frames=13",
                                                                     "generator.guidance=4.0"]))
        assert registry.LOADS["generator"] == before + 1 and b.pipe is a.pipe
        assert (a.steps, a.num_frames) == (2, 9) and (b.steps, b.num_frames, b.guidance) == (3, 13, 4.0)
        assert probe(b.generate("A ball falls", seed=0, out_path=tmp_path / "b.mp4").path).num_frames == 13
    finally:
        registry.clear_cache()


def test_wan22_second_expert_gets_guidance_2(tmp_path, gens):
    from phyt2v.tiny.families import build_tiny_wan

    folder = build_tiny_wan(tmp_path / "wan22", experts=2)
    g = DiffusersGenerator(str(folder), num_frames=9, steps=2, height=16, width=16, guidance=4.0, guidance_2=3.0)
    assert g.pipe.transformer_2 is not None and g.pipe.config.boundary_ratio == 0.875
    g.generate("A ball falls", seed=0, out_path=tmp_path / "v.mp4")
    assert (g.pipe._guidance_scale, g.pipe._guidance_scale_2) == (4.0, 3.0)
    # offload=auto counts both experts' weights
    one = sum(p.numel() * 4 for p in g.pipe.transformer.parameters())
    assert g.weight_bytes() >= 2 * one + sum(p.numel() * 4 for p in g.pipe.text_encoder.parameters())
    with pytest.raises(ConfigError, match="guidance_2 needs a Wan 2.2 pipeline with two transformers"):
        DiffusersGenerator("tiny-wan", pipeline=gens["tiny-wan"].pipe, num_frames=9, steps=2, height=16, width=16,
                           guidance_2=3.0)


def test_budget_before_load_from_the_model_files(gens):
    from phyt2v.generators.budget import DEFAULT_BUDGET, budget_before_load

    def budget(model, *extra):
        return budget_before_load(load_config(overrides=[f"generator.model={model}", *extra]).generator)

    assert (budget("tiny-wan"), budget("tiny-ltx"), budget("tiny-hunyuan"), budget("tiny")) == (512, 128, 256, 64)
    assert budget("nobody/not-cached") == DEFAULT_BUDGET
    assert budget("tiny-wan", "generator.max_prompt_tokens=100") == 100
    assert 1.0 <= gens["tiny-wan"].tokens_per_word() < 1.3  # word-level tokenizer: about one token a word


def test_compile_refused_where_the_transformer_has_no_repeated_blocks(gens):
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    with pytest.raises(ConfigError, match="generator.compile: the cogvideox transformer .* declares no repeated"):
        CogVideoXGenerator("tiny", num_frames=9, steps=2, height=16, width=16, compile=True)


def test_unknown_video_pipeline_runs_on_its_own_defaults(gens, tmp_path, caplog):
    from diffusers import WanPipeline

    class MyVideoPipeline(WanPipeline):  # a class no family names
        pass

    pipe = MyVideoPipeline(**gens["tiny-wan"].pipe.components)
    with caplog.at_level("WARNING"):
        g = DiffusersGenerator("mine", pipeline=pipe, num_frames=9, steps=2, height=16, width=16)
    assert g.family.name == "generic" and "not a known video family" in caplog.text
    assert g.model_limit == 512  # its own max_sequence_length default
    out = g.generate("A ball falls", seed=0, out_path=tmp_path / "v.mp4")
    assert probe(out.path).num_frames == 9


def test_a_pipelines_own_defaults_are_not_overridden_with_none(gens, tmp_path):
    """Only the arguments the user or the family sets are passed: a pipeline whose default negative prompt is a
    string (Allegro's) keeps it when phyt2v has none."""
    from diffusers import WanPipeline

    seen = []

    class DefaultNegativePipeline(WanPipeline):  # no family names it; its __call__ reads its own default
        def __call__(self, prompt=None, negative_prompt="low quality, blurry", height=480, width=832, num_frames=81,
                     num_inference_steps=50, guidance_scale=5.0, **kw):
            seen.append(negative_prompt.lower())  # Allegro: AttributeError on None
            return super().__call__(prompt=prompt, negative_prompt=negative_prompt, height=height, width=width,
                                    num_frames=num_frames, num_inference_steps=num_inference_steps,
                                    guidance_scale=guidance_scale, **kw)

    pipe = DefaultNegativePipeline(**gens["tiny-wan"].pipe.components)
    g = DiffusersGenerator("mine", pipeline=pipe, num_frames=9, steps=2, height=16, width=16)
    g.generate("A ball falls", seed=0, out_path=tmp_path / "v.mp4")
    assert seen == ["low quality, blurry"]
    g2 = DiffusersGenerator("mine", pipeline=pipe, num_frames=9, steps=2, height=16, width=16,
                            negative_prompt="Static")
    g2.generate("A ball falls", seed=0, out_path=tmp_path / "w.mp4")
    assert seen[-1] == "static"  # a negative prompt that is set is passed


def test_doctor_lists_the_loadable_families():
    from rich.console import Console

    from phyt2v.cli.doctor_report import families_table

    console = Console(width=200, record=True)
    console.print(families_table())
    text = console.export_text()
    for cls in ("CogVideoXPipeline", "WanPipeline", "LTXPipeline", "HunyuanVideoPipeline"):
        assert f"{cls}" in text
    assert text.count("yes") >= 6
