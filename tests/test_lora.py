"""generator.lora on a tiny random-weight WanPipeline: PhyGDPO's DiffSynth layout, diffusers' own layout,
scales, and the no-match error. The expected outputs are computed independently by merging W + scale*B@A."""

from __future__ import annotations

import copy
import logging

import pytest

import torch
from safetensors.torch import save_file

from phyt2v.config import load_config, preset_names
from phyt2v.errors import BackendError, ConfigError
from phyt2v.generators.lora import LoraSpec, apply_loras

# Original Wan (DiffSynth) module name -> diffusers WanTransformer3DModel module name, written out here
# independently of the code under test.
WAN_TO_DIFFUSERS = {
    "self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0", "cross_attn.q": "attn2.to_q", "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v", "cross_attn.o": "attn2.to_out.0", "ffn.0": "ffn.net.0.proj", "ffn.2": "ffn.net.2",
}
LAYERS, RANK = 2, 4


def tiny_wan_pipe(two_experts: bool = False):
    pytest.importorskip("peft", reason="diffusers loads LoRA through peft (a phyt2v dependency); pip install peft")
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    make = lambda: WanTransformer3DModel(  # noqa: E731
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=32, ffn_dim=32, num_layers=LAYERS, rope_max_seq_len=32).eval()
    return WanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=make(),
                       transformer_2=make() if two_experts else None, scheduler=FlowMatchEulerDiscreteScheduler(),
                       boundary_ratio=0.875 if two_experts else None)


@pytest.fixture
def pipe():
    return tiny_wan_pipe()


def forward(transformer):
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(1, 4, 2, 4, 4, generator=g), torch.randn(1, 8, 16, generator=g)
    with torch.no_grad():
        return transformer(hidden_states=x, timestep=torch.tensor([500]), encoder_hidden_states=ctx,
                           return_dict=False)[0]


def lora_pairs(transformer, layers=range(LAYERS)):
    """{(block, wan name): (A, B)} with random nonzero A and B shaped for the tiny model."""
    g = torch.Generator().manual_seed(2)
    mods = dict(transformer.named_modules())
    out = {}
    for i in layers:
        for wan, ours in WAN_TO_DIFFUSERS.items():
            lin = mods.get(f"blocks.{i}.{ours}") or mods[f"blocks.0.{ours}"]
            out[(i, wan)] = (0.3 * torch.randn(RANK, lin.in_features, generator=g),
                             0.3 * torch.randn(lin.out_features, RANK, generator=g))
    return out


def write_diffsynth(path, pairs, prefix="", adapter="dpo"):
    """The keys DiffSynth-Studio's trainer saves (peft adapter name kept, optional 'pipe.dit.' prefix)."""
    sd, mid = {}, f".{adapter}" if adapter else ""
    for (i, wan), (a, b) in pairs.items():
        sd[f"{prefix}blocks.{i}.{wan}.lora_A{mid}.weight"] = a.contiguous()
        sd[f"{prefix}blocks.{i}.{wan}.lora_B{mid}.weight"] = b.contiguous()
    save_file(sd, str(path))
    return path


def merged(transformer, pairs, scale):
    """What DiffSynth's own loader does: W += scale * B @ A on a copy of the base model."""
    model = copy.deepcopy(transformer)
    mods = dict(model.named_modules())
    with torch.no_grad():
        for (i, wan), (a, b) in pairs.items():
            mods[f"blocks.{i}.{WAN_TO_DIFFUSERS[wan]}"].weight += scale * (b @ a)
    return model


def test_diffsynth_layout_matches_a_weight_merge(pipe, tmp_path):
    base = forward(pipe.transformer)
    pairs = lora_pairs(pipe.transformer)
    expected = forward(merged(pipe.transformer, pairs, 0.5))
    file = write_diffsynth(tmp_path / "epoch-0.safetensors", pairs)

    [rec] = apply_loras(pipe, [{"path": str(file), "scale": 0.5}])

    out = forward(pipe.transformer)
    assert (out - base).abs().max() > 1e-2
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    assert rec["layout"] == "diffsynth"
    assert rec["pairs"] == rec["modules_matched"] == len(pairs) == 10 * LAYERS
    assert rec["keys"] == 2 * len(pairs) and rec["scale"] == 0.5 and rec["adapter_name"] == "lora0"


def test_scale_zero_gives_the_base_output(pipe, tmp_path):
    base = forward(pipe.transformer)
    file = write_diffsynth(tmp_path / "l.safetensors", lora_pairs(pipe.transformer))
    [rec] = apply_loras(pipe, [LoraSpec(path=str(file), scale=0.0, adapter_name="phygdpo")])
    assert rec["modules_matched"] == 10 * LAYERS
    torch.testing.assert_close(forward(pipe.transformer), base, atol=1e-6, rtol=1e-5)


def test_pipe_dit_prefix_and_default_adapter_from_a_folder(pipe, tmp_path):
    pairs = lora_pairs(pipe.transformer)
    expected = forward(merged(pipe.transformer, pairs, 1.0))
    (tmp_path / "Wan2.1-T2V-1.3B_PhyGDPO").mkdir()
    write_diffsynth(tmp_path / "Wan2.1-T2V-1.3B_PhyGDPO" / "step-0000500.safetensors", pairs,
                    prefix="pipe.dit.", adapter="default")
    [rec] = apply_loras(pipe, [{"path": str(tmp_path), "subfolder": "Wan2.1-T2V-1.3B_PhyGDPO"}])
    assert rec["file"].endswith("step-0000500.safetensors") and rec["modules_matched"] == len(pairs)
    torch.testing.assert_close(forward(pipe.transformer), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("prefix, adapter, layout", [
    ("dit.", None, "diffsynth"),                        # prefix, no adapter name
    ("diffusion_model.", None, "wan-original"),         # ComfyUI / original Wan: diffusers converts it alone
    ("diffusion_model.", "default", "wan-original"),    # the same with peft's adapter name left in
])
def test_wan_layout_variants(pipe, tmp_path, prefix, adapter, layout):
    pairs = lora_pairs(pipe.transformer)
    expected = forward(merged(pipe.transformer, pairs, 1.0))
    file = write_diffsynth(tmp_path / "l.safetensors", pairs, prefix=prefix, adapter=adapter)
    [rec] = apply_loras(pipe, [{"path": str(file)}])
    assert rec["layout"] == layout and rec["modules_matched"] == len(pairs)
    torch.testing.assert_close(forward(pipe.transformer), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_diffusers_layout_loads(pipe, tmp_path, prefix):
    pairs = lora_pairs(pipe.transformer)
    expected = forward(merged(pipe.transformer, pairs, 1.0))
    sd = {}
    for (i, wan), (a, b) in pairs.items():
        sd[f"{prefix}blocks.{i}.{WAN_TO_DIFFUSERS[wan]}.lora_A.weight"] = a.contiguous()
        sd[f"{prefix}blocks.{i}.{WAN_TO_DIFFUSERS[wan]}.lora_B.weight"] = b.contiguous()
    save_file(sd, str(tmp_path / "pytorch_lora_weights.safetensors"))
    [rec] = apply_loras(pipe, [{"path": str(tmp_path)}])
    assert rec["layout"] == ("diffusers" if prefix else "diffusers-unprefixed")
    assert rec["modules_matched"] == rec["pairs"] == len(pairs)
    torch.testing.assert_close(forward(pipe.transformer), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("keys", [
    ["text_model.encoder.layers.0.mlp.fc1", "text_model.encoder.layers.0.mlp.fc2"],   # another model's LoRA
    ["transformer.transformer_blocks.0.attn1.to_q"],                                 # CogVideoX names on Wan
    ["text_encoder.encoder.block.0.layer.0.SelfAttention.q"],   # diffusers drops it silently: Wan loads no encoder LoRA
])
def test_a_lora_that_matches_nothing_is_an_error(pipe, tmp_path, keys):
    base = forward(pipe.transformer)
    sd = {}
    for k in keys:
        sd[f"{k}.lora_A.weight"], sd[f"{k}.lora_B.weight"] = torch.ones(RANK, 24), torch.ones(24, RANK)
    file = tmp_path / "other.safetensors"
    save_file(sd, str(file))
    with pytest.raises(ConfigError, match="matched no module") as err:
        apply_loras(pipe, [{"path": str(file)}])
    assert str(file) in str(err.value) and keys[0] in str(err.value) and "lora_A" in str(err.value)
    torch.testing.assert_close(forward(pipe.transformer), base)


def test_partial_match_warns_with_counts(pipe, tmp_path, caplog):
    pairs = lora_pairs(pipe.transformer, layers=range(LAYERS + 1))   # one block more than the model has
    file = write_diffsynth(tmp_path / "big.safetensors", pairs)
    with caplog.at_level(logging.WARNING, logger="phyt2v.generators.lora"):
        [rec] = apply_loras(pipe, [{"path": str(file)}])
    assert rec["pairs"] == 10 * (LAYERS + 1) and rec["modules_matched"] == 10 * LAYERS
    assert f"{10 * LAYERS} of its {10 * (LAYERS + 1)} modules matched" in caplog.text


def test_two_adapters_each_with_its_scale(pipe, tmp_path):
    p1, p2 = lora_pairs(pipe.transformer), {k: (a.flip(0), b) for k, (a, b) in lora_pairs(pipe.transformer).items()}
    expected = forward(merged(merged(pipe.transformer, p1, 0.7), p2, -0.4))
    f1, f2 = write_diffsynth(tmp_path / "a.safetensors", p1), write_diffsynth(tmp_path / "b.safetensors", p2)
    recs = apply_loras(pipe, [{"path": str(f1), "scale": 0.7}, {"path": str(f2), "scale": -0.4}])
    assert [r["adapter_name"] for r in recs] == ["lora0", "lora1"]
    torch.testing.assert_close(forward(pipe.transformer), expected, atol=1e-5, rtol=1e-4)


def test_transformer_2_loads_into_the_second_expert_only(tmp_path):
    pipe = tiny_wan_pipe(two_experts=True)
    base1, base2 = forward(pipe.transformer), forward(pipe.transformer_2)
    pairs = lora_pairs(pipe.transformer_2)
    expected2 = forward(merged(pipe.transformer_2, pairs, 1.0))
    file = write_diffsynth(tmp_path / "low.safetensors", pairs)
    [rec] = apply_loras(pipe, [{"path": str(file), "transformer_2": True}])
    assert rec["component"] == "transformer_2" and rec["modules_matched"] == len(pairs)
    torch.testing.assert_close(forward(pipe.transformer), base1)
    torch.testing.assert_close(forward(pipe.transformer_2), expected2, atol=1e-5, rtol=1e-4)
    assert (forward(pipe.transformer_2) - base2).abs().max() > 1e-2


def test_transformer_2_on_a_single_transformer_pipeline_is_refused(pipe, tmp_path):
    file = write_diffsynth(tmp_path / "low.safetensors", lora_pairs(pipe.transformer))
    with pytest.raises(ConfigError, match="no second transformer"):
        apply_loras(pipe, [{"path": str(file), "transformer_2": True}])


def test_bad_specs_are_config_errors(pipe, tmp_path):
    with pytest.raises(ConfigError, match=r"generator.lora\[0\].scal"):
        apply_loras(pipe, [{"path": "x/y", "scal": 1.0}])
    with pytest.raises(ConfigError, match="neither an existing file"):
        apply_loras(pipe, [{"path": str(tmp_path / "missing.safetensors")}])
    for name in ("a.safetensors", "b.safetensors"):
        write_diffsynth(tmp_path / name, lora_pairs(pipe.transformer))
    with pytest.raises(ConfigError, match="set weight_name to one of them"):
        apply_loras(pipe, [{"path": str(tmp_path)}])
    with pytest.raises(ConfigError, match="no file .*c.safetensors"):
        apply_loras(pipe, [{"path": str(tmp_path), "weight_name": "c.safetensors"}])
    with pytest.raises(ConfigError, match="used twice"):
        apply_loras(pipe, [{"path": str(tmp_path / "a.safetensors"), "adapter_name": "x"},
                           {"path": str(tmp_path / "b.safetensors"), "adapter_name": "x"}])


def test_hub_id_goes_through_huggingface_hub(pipe, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))   # empty cache: fails at once offline, naming the download
    with pytest.raises(BackendError, match="hub repo .CaiYuanhao/PhyGDPO.*hf download CaiYuanhao/PhyGDPO"):
        apply_loras(pipe, [{"path": "CaiYuanhao/PhyGDPO", "subfolder": "Wan2.1-T2V-1.3B_PhyGDPO",
                            "weight_name": "epoch-0.safetensors"}])


def test_weight_name_picks_the_file_in_a_folder(pipe, tmp_path):
    for name in ("epoch-0.safetensors", "epoch-1.safetensors"):
        write_diffsynth(tmp_path / name, lora_pairs(pipe.transformer))
    [rec] = apply_loras(pipe, [{"path": str(tmp_path), "weight_name": "epoch-1.safetensors"}])
    assert rec["file"] == str(tmp_path / "epoch-1.safetensors") and rec["weight_name"] == "epoch-1.safetensors"


@pytest.mark.parametrize("name, subfolder, weight_name", [
    ("wan2.1-1.3b-phygdpo", "Wan2.1-T2V-1.3B_PhyGDPO", "epoch-0.safetensors"),
    ("wan2.1-14b-phygdpo", "Wan2.1-T2V-14B_PhyGDPO", "step-0001000.safetensors"),
])
def test_phygdpo_presets_are_the_published_setting(name, subfolder, weight_name):
    if "wan2.1-1.3b" not in preset_names():
        pytest.skip("the PhyGDPO presets extend the wan2.1 base presets (generator families branch)")
    g = load_config(name).generator
    [spec] = [LoraSpec.model_validate(x) for x in g.lora]
    assert (spec.path, spec.subfolder, spec.weight_name, spec.scale) == ("CaiYuanhao/PhyGDPO", subfolder, weight_name, 1.0)
    assert g.model == f"Wan-AI/{subfolder.removesuffix('_PhyGDPO')}-Diffusers"
    # Open-PhyGDPO validate_lora scripts on DiffSynth's WanVideoPipeline defaults
    assert (g.height, g.width, g.num_frames, g.steps, g.guidance, g.flow_shift) == (480, 832, 81, 50, 5.0, 5.0)
    assert g.options["negative_prompt"].startswith("Bright tones, overexposed, static")


@pytest.mark.slow
def test_run_json_records_each_lora_as_a_json_object(tmp_path):
    """video_info.knobs.loras in run.json: one object per adapter (path, weight name, scale, adapter name), as
    JSON, not a Python repr string."""
    import json

    from diffusers import WanTransformer3DModel
    from doubles import FakeCaptioner, FakeScorer, physics_llm

    from phyt2v import Refiner
    from phyt2v.tiny import tiny_model_dir

    pytest.importorskip("peft")
    transformer = WanTransformer3DModel.from_pretrained(str(tiny_model_dir("wan")), subfolder="transformer")
    n = len(transformer.blocks)
    write_diffsynth(tmp_path / "lora.safetensors", lora_pairs(transformer, range(n)))
    cfg = load_config("smoke", overrides=[
        "generator.backend=diffusers", "generator.model=tiny-wan", "generator.fps=null", "generator.guidance=null",
        f"generator.lora=[{{path: {tmp_path / 'lora.safetensors'}, scale: 0.5, adapter_name: phys}}]",
        "loop.max_rounds=1", "loop.min_rounds=1"], out=str(tmp_path / "runs"))
    res = Refiner(cfg, llm=physics_llm(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.5, 0.5)])).refine(
        "A ball falls onto the floor")
    data = json.loads((res.run_dir / "run.json").read_text())
    [lora] = data["rounds"][0]["video_info"]["knobs"]["loras"]
    assert isinstance(lora, dict)
    assert (lora["path"], lora["scale"], lora["adapter_name"], lora["weight_name"]) == (
        str(tmp_path / "lora.safetensors"), 0.5, "phys", None)
    assert lora["layout"] == "diffsynth" and lora["modules_matched"] == lora["pairs"] > 0
