"""The newer diffusers families (LTX-2, Kandinsky 5, SkyReels-V2 and its diffusion forcing, Sana-Video, Cosmos
Predict 2.5, Motif-Video) and the two without tests before (HunyuanVideo 1.5, Mochi), on their tiny random-weight
pipelines, CPU, offline: token counts against each pipeline's own encoding, family options refused where they do not
apply, SkyReels-V2 DF's window, LTX-2's audio muxed into the mp4, and the presets against their cards."""

from __future__ import annotations

import pytest

from phyt2v.config import load_config
from phyt2v.errors import ConfigError, LoadError
from phyt2v.generators.audio import probe_audio
from phyt2v.generators.diffusers_gen import DiffusersGenerator
from phyt2v.store.video_io import probe, read_frames

# tiny model -> (frames, side) on its rule
SHAPES = {"tiny-ltx2": (9, 32), "tiny-kandinsky5": (9, 16), "tiny-skyreels": (9, 16), "tiny-skyreels-df": (9, 16),
          "tiny-sana-video": (9, 32), "tiny-cosmos": (9, 16), "tiny-motif": (9, 16), "tiny-hunyuan15": (9, 16),
          "tiny-mochi": (7, 16)}
SHORT = "A glass of water tips over and the water spills onto the table"
LONG = "a red ball falls onto the wooden floor and bounces " * 120  # 1200 words: over every budget


@pytest.fixture(scope="module")
def gens():
    return {m: DiffusersGenerator(m, num_frames=f, steps=2, height=s, width=s, device="cpu")
            for m, (f, s) in SHAPES.items()}


def _kept(model: str, g: DiffusersGenerator, prompt: str) -> int:
    """How many tokens of ``prompt`` the pipeline itself keeps, through its own encoding code."""
    import torch

    pipe, sig = g.pipe, g.sig
    with torch.no_grad():
        if model == "tiny-ltx2":
            return int(pipe._get_gemma_prompt_embeds(prompt, max_sequence_length=1024)[1].sum())
        if model == "tiny-kandinsky5":
            return int(pipe.encode_prompt(prompt, max_sequence_length=512)[2][-1])  # cumulative sequence lengths
        if model in ("tiny-skyreels", "tiny-skyreels-df"):  # rows past the prompt's tokens are zeroed
            return int((pipe._get_t5_prompt_embeds(prompt, max_sequence_length=512)[0].abs().sum(-1) > 0).sum())
        if model == "tiny-sana-video":
            return int(pipe.encode_prompt(prompt, do_classifier_free_guidance=False,
                                          complex_human_instruction=sig["complex_human_instruction"])[1].sum())
        if model == "tiny-motif":
            return int(pipe._get_prompt_embeds(pipe.text_encoder, pipe.tokenizer, prompt, max_sequence_length=512)[1].sum())
        if model == "tiny-hunyuan15":
            return int(pipe._get_mllm_prompt_embeds(pipe.text_encoder, pipe.tokenizer, prompt, device="cpu",
                                                    system_message=pipe.system_message)[1].sum())
        if model == "tiny-mochi":
            return int(pipe._get_t5_prompt_embeds(prompt, max_sequence_length=256)[1].sum())
        if model == "tiny-cosmos":  # no mask comes back: the ids the text encoder is given, less the padding
            seen = []
            hook = pipe.text_encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
            try:
                pipe._get_prompt_embeds(prompt, max_sequence_length=512)
            finally:
                hook.remove()
            return int((seen[0] != pipe.tokenizer.pad_token_id).sum())
    raise KeyError(model)


@pytest.mark.slow
@pytest.mark.parametrize("model", list(SHAPES))
def test_token_counts_match_each_pipelines_own_encoding(gens, model):
    g = gens[model]
    binding = min((e for e in g.encoders if not e.pooled_only), key=lambda e: e.limit)
    short = g.token_counts(SHORT)[binding.name]
    assert 0 < short < binding.limit and _kept(model, g, SHORT) == short == g.count_tokens(SHORT)
    long = g.token_counts(LONG)
    assert long[binding.name] > binding.limit
    kept = _kept(model, g, LONG)
    if model == "tiny-kandinsky5":  # it cuts the text by characters first: a token or two under its limit
        assert binding.limit - 3 <= kept <= binding.limit
    else:
        assert kept == binding.limit
    assert g.describe()["token_budget"] == binding.limit == g.max_prompt_tokens


def test_budgets_and_pooled_encoders(gens):
    budgets = {m: g.model_limit for m, g in gens.items()}
    assert budgets == {"tiny-ltx2": 1024, "tiny-kandinsky5": 512, "tiny-skyreels": 512, "tiny-skyreels-df": 512,
                       "tiny-sana-video": 300, "tiny-cosmos": 512, "tiny-motif": 512, "tiny-hunyuan15": 1000,
                       "tiny-mochi": 256}
    k5 = gens["tiny-kandinsky5"].describe()
    assert k5["encoders"] == {"text_encoder": 512, "text_encoder_2": 77} and k5["pooled_only"] == ["text_encoder_2"]
    # a prompt past CLIP's 77 tokens but within Qwen's 512 is within the budget; CLIP's cut is recorded
    prompt = "a red ball falls onto the wooden floor and bounces " * 10
    counts = gens["tiny-kandinsky5"].token_counts(prompt)
    assert counts["text_encoder_2"] > 77 and counts["text_encoder"] <= 512


def test_sana_video_motion_score_is_sent_and_counted(gens, tmp_path):
    g = gens["tiny-sana-video"]
    scored = DiffusersGenerator("tiny-sana-video", pipeline=g.pipe, num_frames=9, steps=2, height=32, width=32,
                                motion_score=30)
    sent = []
    orig = type(g.pipe).__call__
    try:
        type(g.pipe).__call__ = lambda self, *a, **kw: sent.append(kw["prompt"]) or orig(self, *a, **kw)
        scored.generate("A ball falls", seed=0, out_path=tmp_path / "v.mp4")
    finally:
        type(g.pipe).__call__ = orig
    assert sent == ["A ball falls motion score: 30."]
    assert scored.count_tokens("A ball falls") == g.count_tokens("A ball falls motion score: 30.")


@pytest.mark.parametrize("model, kw, match", [
    ("tiny-ltx2", {"ar_step": 5}, r"generator.options.ar_step does not apply to ltx2 pipelines"),
    ("tiny-skyreels", {"ar_step": 5}, r"generator.options.ar_step does not apply to skyreels-v2 pipelines"),
    ("tiny-skyreels-df", {"motion_score": 30}, r"generator.options.motion_score does not apply to skyreels-v2-df"),
    ("tiny-sana-video", {"motion_score": "high"}, r"generator.options.motion_score must be int or float, not 'high'"),
    ("tiny-ltx2", {"audio": 1}, r"generator.options.audio must be bool, not 1"),
    ("tiny-skyreels-df", {"num_frames": 101}, r"num_frames 101 is longer than the diffusion-forcing window of 97 frames: "
                                              r"set generator.options.overlap_history"),
    ("tiny-skyreels-df", {"num_frames": 25, "base_num_frames": 17}, r"window of 17 frames"),
    ("tiny-kandinsky5", {"flow_shift": 3.0}, r"generator.flow_shift does not apply to kandinsky5"),
    ("tiny-mochi", {"num_frames": 9}, r"generator.num_frames 9 must be 6k\+1 .* e.g. 7 or 13"),
    ("tiny-sana-video", {"width": 48}, r"generator.width 48 must be a multiple of 32 .* e.g. 32 or 64"),
])
def test_settings_a_family_cannot_take_refused_before_weights_load(gens, monkeypatch, model, kw, match):
    gens[model]  # the tiny folder exists
    monkeypatch.setattr(DiffusersGenerator, "_load", lambda self, path: pytest.fail("weights were loaded"))
    frames, side = SHAPES[model]
    with pytest.raises(ConfigError, match=match):
        DiffusersGenerator(model, **{"num_frames": frames, "steps": 2, "height": side, "width": side, **kw})


def test_skyreels_df_renders_past_its_window_with_overlap(gens, tmp_path):
    g = DiffusersGenerator("tiny-skyreels-df", pipeline=gens["tiny-skyreels-df"].pipe, num_frames=13, steps=2,
                           height=16, width=16, base_num_frames=9, overlap_history=5, addnoise_condition=20)
    out = g.generate("A ball rolls", seed=0, out_path=tmp_path / "v.mp4")
    assert probe(out.path).num_frames == 13 and out.fps == 24


def test_ltx2_audio_is_muxed_into_the_mp4(gens, tmp_path):
    g = gens["tiny-ltx2"]
    out = g.generate("A ball falls onto the floor", seed=0, out_path=tmp_path / "v.mp4")
    stream = probe_audio(out.path)
    assert stream is not None and stream["codec"] == "aac" and stream["sample_rate"] == 16000
    assert stream["layout"] == "stereo"
    assert out.audio == {"codec": "aac", "sample_rate": 16000, "channels": 2, "seconds": 0.375}  # 9 frames / 24 fps
    frames, fps = read_frames(out.path)  # captioners and scorers read the frames as before
    assert len(frames) == 9 and round(fps) == 24
    silent = DiffusersGenerator("tiny-ltx2", pipeline=g.pipe, num_frames=9, steps=2, height=32, width=32, audio=False)
    quiet = silent.generate("A ball falls onto the floor", seed=0, out_path=tmp_path / "q.mp4")
    assert quiet.audio is None and probe_audio(quiet.path) is None and probe(quiet.path).num_frames == 9


def test_cosmos_needs_its_guardrail_before_any_weight_loads(gens, monkeypatch, tmp_path):
    import json
    import shutil

    from phyt2v.tiny import tiny_model_dir

    folder = tmp_path / "cosmos"
    shutil.copytree(tiny_model_dir("cosmos"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = [None, None]  # a real model's folder names no pass-through checker
    (folder / "model_index.json").write_text(json.dumps(index))
    monkeypatch.setattr(DiffusersGenerator, "_load", lambda self, path: pytest.fail("weights were loaded"))
    monkeypatch.setattr("phyt2v.generators.families.cosmos.find_spec", lambda name: None)
    with pytest.raises(LoadError, match="runs only with its safety checker .*: pip install cosmos_guardrail"):
        DiffusersGenerator(str(folder), num_frames=9, steps=2, height=16, width=16)


def test_lora_refused_before_load_where_the_pipeline_has_no_loader():
    from phyt2v.generators.precheck import check_before_load

    lora = "generator.lora=[{path: some/lora}]"
    for model, cls in (("tiny-motif", "MotifVideoPipeline"), ("tiny-hunyuan15", "HunyuanVideo15Pipeline")):
        with pytest.raises(ConfigError, match=f"generator.lora: {cls} has no LoRA loader"):
            check_before_load(load_config(overrides=["generator.backend=diffusers", f"generator.model={model}", lora]))
    check_before_load(load_config(overrides=["generator.backend=diffusers", "generator.model=tiny-ltx2", lora]))


NEW_PRESETS = {"ltx-2": ("Lightricks/LTX-2", "ltx2"),
               "kandinsky5-t2v": ("kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers", "kandinsky5"),
               "skyreels-v2": ("Skywork/SkyReels-V2-T2V-14B-540P-Diffusers", "skyreels-v2"),
               "sana-video": ("Efficient-Large-Model/SANA-Video_2B_480p_diffusers", "sana-video"),
               "cosmos-predict2.5": ("nvidia/Cosmos-Predict2.5-2B", "cosmos-predict2.5"),
               "motif-video": ("Motif-Technologies/Motif-Video-2B", "motif-video")}


def test_new_presets_match_their_cards_and_plan():
    from phyt2v.cli.doctor import plan_for
    from phyt2v.generators.footprint import render_shape
    from phyt2v.generators.precheck import check_before_load

    g = {n: load_config(n).generator for n in NEW_PRESETS}
    assert (g["ltx-2"].height, g["ltx-2"].width, g["ltx-2"].num_frames, g["ltx-2"].steps, g["ltx-2"].fps) == (
        512, 768, 121, 30, 24)
    assert (g["kandinsky5-t2v"].num_frames, g["kandinsky5-t2v"].guidance, g["kandinsky5-t2v"].fps) == (121, 5.0, 24)
    assert (g["skyreels-v2"].height, g["skyreels-v2"].width, g["skyreels-v2"].flow_shift, g["skyreels-v2"].guidance) == (
        544, 960, 8.0, 6.0)
    assert (g["sana-video"].num_frames, g["sana-video"].fps, g["sana-video"].options["motion_score"]) == (81, 16, 30)
    assert (g["cosmos-predict2.5"].num_frames, g["cosmos-predict2.5"].steps, g["cosmos-predict2.5"].options) == (
        93, 36, {"revision": "diffusers/base/post-trained"})
    assert (g["motif-video"].height, g["motif-video"].flow_shift, g["motif-video"].guidance) == (736, 15.0, None)
    # what the memory plan's working-memory estimate reads: hidden size and pixels / frames per token, from the table
    shapes = {n: render_shape(g[n]) for n in NEW_PRESETS}
    assert {n: (x["hidden"], x["pixels_per_token"], x["frames_per_token"]) for n, x in shapes.items()} == {
        "ltx-2": (4096, 32, 8), "kandinsky5-t2v": (1792, 16, 4), "skyreels-v2": (5120, 16, 4),
        "sana-video": (2240, 16, 4), "cosmos-predict2.5": (2048, 16, 4), "motif-video": (1536, 16, 4)}
    for name, (model, family) in NEW_PRESETS.items():
        cfg = load_config(name)
        assert cfg.note and g[name].model == model and check_before_load(cfg).name == family
        plan, _ = plan_for(cfg, 80.0)  # the shipped table: counts and the render's shape
        gen = plan["roles"]["generator"]
        assert gen["source"] == "table" and gen["bytes"] > 5 * 2**30 and plan["placement"] in ("resident", "swap")
