"""The memory plan: parameter counts of full-size architectures built on the meta device (no weights),
the shipped table against them, placements for given free-VRAM figures, the refusal, doctor --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.runtime import memplan, paramcount

GiB = 2**30
ROOT = Path(__file__).resolve().parents[1]
# Published architectures (diffusers' conversion-script configs; the UMT5-XXL / T5-XXL hub configs).
COG_5B = dict(num_attention_heads=48, attention_head_dim=64, num_layers=42, in_channels=16, out_channels=16,
              text_embed_dim=4096, time_embed_dim=512, use_rotary_positional_embeddings=True)
WAN_1_3B = dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, patch_size=[1, 2, 2])
WAN_14B = dict(WAN_1_3B, num_attention_heads=40, ffn_dim=13824, num_layers=40)
UMT5_XXL = dict(model_type="umt5", d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24,
                vocab_size=256384, feed_forward_proj="gated-gelu")
T5_XXL = dict(UMT5_XXL, model_type="t5", vocab_size=32128)


def cfg(model: str, **sections):
    sections["generator"] = {"model": model, **sections.get("generator", {})}
    return load_config(None, **sections)


def plan_bytes(config, role: str) -> int:
    return memplan.estimate_roles(config, ("embedded", None, ""))[role].bytes


@pytest.fixture(scope="module")
def meta_counts():
    """True parameter counts of the full-size architectures, built on meta from the configs above."""
    dm, tm = paramcount.diffusers_model_params, paramcount.transformers_model_params
    return {"cog5b": dm("CogVideoXTransformer3DModel", COG_5B, memo=False),
            "wan1.3b": dm("WanTransformer3DModel", WAN_1_3B, memo=False),
            "wan14b": dm("WanTransformer3DModel", WAN_14B, memo=False),
            "umt5": tm(UMT5_XXL, "UMT5EncoderModel", memo=False),
            "t5": tm(T5_XXL, "T5EncoderModel", memo=False)}


def test_full_size_counts_match_the_published_sizes(meta_counts):
    c = meta_counts
    assert abs(c["cog5b"] / 5.6e9 - 1) < 0.02 and abs(c["wan1.3b"] / 1.42e9 - 1) < 0.02
    assert abs(c["wan14b"] / 14.3e9 - 1) < 0.02 and abs(c["umt5"] / 5.68e9 - 1) < 0.02
    assert abs(c["t5"] / 4.76e9 - 1) < 0.02
    assert abs((c["wan14b"] + c["umt5"]) * 2 / 40e9 - 1) < 0.02  # Wan2.1-14B + UMT5-XXL in bf16: ~40 GB


@pytest.mark.parametrize("model, parts", [
    ("THUDM/CogVideoX-5b", ("cog5b", "t5")),
    ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", ("wan1.3b", "umt5")),
    ("Wan-AI/Wan2.1-T2V-14B-Diffusers", ("wan14b", "umt5")),
])
def test_offline_plan_within_15_percent_of_true_bytes(meta_counts, model, parts):
    est = memplan.estimate_roles(cfg(model), ("embedded", None, ""))["generator"]
    assert est.source == "table"
    truth = 2 * sum(meta_counts[p] for p in parts)  # bf16 (dtype auto on CUDA)
    weights = est.components["transformer"] + est.components["text_encoder"]
    assert abs(weights / truth - 1) < 0.15


def test_local_folder_configs_are_counted_on_meta(tmp_path, meta_counts):
    """A pipeline folder with model_index.json and component configs, no weights: source 'config'."""
    index = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"],
             "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
             "vae": ["diffusers", "AutoencoderKLWan"], "scheduler": ["diffusers", "UniPCMultistepScheduler"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    for comp, conf in (("transformer", WAN_1_3B), ("text_encoder", UMT5_XXL), ("vae", {})):
        (tmp_path / comp).mkdir()
        (tmp_path / comp / "config.json").write_text(json.dumps(conf))
    config = cfg(str(tmp_path), generator={"model": str(tmp_path), "dtype": "float32"})
    est = memplan.estimate_roles(config, ("embedded", None, ""))["generator"]
    assert est.source == "config"
    assert est.components["transformer"] == 4 * meta_counts["wan1.3b"]
    assert est.components["text_encoder"] == 4 * meta_counts["umt5"]


LOCAL = dict(captioner={"model": "Qwen/Qwen2.5-VL-3B-Instruct"}, scorer={"backend": "videocon"})


@pytest.mark.parametrize("vram, placement, offload", [
    (80, "resident", "none"), (40, "swap", "none"), (24, "offload", "model"),
])
def test_placement_follows_free_vram(vram, placement, offload):
    config = cfg("THUDM/CogVideoX-5b", **LOCAL)
    plan = memplan.make_plan(config, vram * GiB, cuda=True, env={})
    assert (plan.placement, plan.generator_offload) == (placement, offload)
    assert plan.peak_bytes <= vram * GiB
    assert plan.roles["llm"].shared_with == "captioner" and plan.roles["llm"].bytes == 0
    assert memplan.build_config(config, plan).generator.offload == offload  # what the generator is built with


def test_peak_arithmetic_resident_and_swap():
    config = cfg("THUDM/CogVideoX-5b", **LOCAL)
    plan = memplan.make_plan(config, 200 * GiB, cuda=True, env={})
    r = plan.roles
    weights = r["generator"].bytes + r["captioner"].bytes + r["scorer"].bytes
    assert plan.peak_bytes == weights + r["generator"].work_bytes + memplan.RESERVE
    swap = memplan.make_plan(config, 40 * GiB, cuda=True, env={})
    assert swap.peak_bytes == r["generator"].bytes + r["generator"].work_bytes + memplan.RESERVE


def test_a_role_that_cannot_fit_is_refused_with_the_knobs():
    config = cfg("THUDM/CogVideoX-5b", captioner={"model": "Qwen/Qwen2.5-VL-7B-Instruct"})
    with pytest.raises(ConfigError) as ei:
        memplan.make_plan(config, 12 * GiB, cuda=True, env={})
    msg = str(ei.value)
    assert "captioner" in msg and "Qwen2.5-VL-7B" in msg and "captioner.quantization=nf4" in msg
    # quantizing the captioner to nf4 makes it fit the same card
    config = cfg("THUDM/CogVideoX-5b", captioner={"model": "Qwen/Qwen2.5-VL-7B-Instruct", "quantization": "nf4"},
                 scorer={"quantization": "nf4"})
    plan = memplan.make_plan(config, 12 * GiB, cuda=True, env={})
    assert plan.placement == "offload" and plan.quantized_scorer


def test_generator_too_big_even_sequential():
    config = cfg("Wan-AI/Wan2.1-T2V-14B-Diffusers", captioner={"model": "tiny"}, scorer={"backend": "vlm-judge"},
                 generator={"model": "Wan-AI/Wan2.1-T2V-14B-Diffusers", "height": 720, "width": 1280,
                            "num_frames": 81})
    with pytest.raises(ConfigError, match=r"the generator .* generator.offload=sequential"):
        memplan.make_plan(config, 4 * GiB, cuda=True, env={})


def test_tiny_and_cpu_plans():
    smoke = load_config("smoke")
    assert memplan.make_plan(smoke, None).placement == "cpu"
    plan = memplan.make_plan(smoke, 8 * GiB, cuda=True, env={})
    assert plan.placement == "resident" and plan.roles["generator"].source == "tiny"


def test_doctor_json_is_one_object_fast_and_offline(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    env.pop("OPENAI_API_KEY", None)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "phyt2v", "doctor", "--preset", "cogvideox-5b", "--vram", "80",
                          "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert time.perf_counter() - t0 < 5
    data = json.loads(out.stdout)
    assert set(data["roles"]) == {"generator", "captioner", "scorer", "llm"}
    assert data["placement"] == "resident" and data["peak_bytes"] <= 80 * GiB
    assert all(isinstance(r["bytes"], int) for r in data["roles"].values())
    assert data["llm_choice"]["backend"] == "vlm"
    bad = subprocess.run([sys.executable, "-m", "phyt2v", "doctor", "--preset", "cogvideox-5b", "--vram", "8"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "error: memory plan: the captioner" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) <= 3  # one wrapped line


def test_parameter_counts_are_remembered_in_the_one_cache_folder(tmp_path, monkeypatch):
    """$XDG_CACHE_HOME is honoured (resources.cache_dir), like every other phyt2v cache file."""
    monkeypatch.delenv("PHYT2V_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tiny_t5 = dict(model_type="t5", d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, vocab_size=99)
    n = paramcount.transformers_model_params(tiny_t5, "T5EncoderModel")
    memo = json.loads((tmp_path / "xdg" / "phyt2v" / "paramcounts.json").read_text())
    assert list(memo.values()) == [n] and not (tmp_path / "home").exists()


@pytest.mark.parametrize("role", ["generator", "captioner", "scorer"])
def test_a_role_of_unknown_size_is_refused_not_planned_at_zero(role, tmp_path, monkeypatch):
    """A model in no local folder, no hub cache and not in the table never counts as 0 bytes on a GPU."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    made_up = "someone/made-up-video-model"
    sections = {"generator": {"model": "THUDM/CogVideoX-2b"}, "captioner": {"model": "Qwen/Qwen2.5-VL-3B-Instruct"},
                "scorer": {"backend": "videocon"}}
    sections[role] = {**sections[role], "model": made_up}
    config = load_config(None, **sections)
    with pytest.raises(ConfigError) as ei:
        memplan.make_plan(config, 80 * GiB, cuda=True, env={})
    msg = str(ei.value)
    assert f"the size of the {role} model '{made_up}' is unknown" in msg
    assert f'hf download {made_up} --include "*.json"' in msg and f"--set {role}.model=PATH" in msg
    assert "\n" not in msg
    assert memplan.make_plan(config, None).placement == "cpu"  # no GPU: its size does not matter


def test_a_local_folder_without_configs_is_refused_naming_the_folder(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline",
                                                           "transformer": ["diffusers", "WanTransformer3DModel"]}))
    config = load_config(None, generator={"model": str(tmp_path)}, captioner={"model": "tiny"},
                         scorer={"backend": "vlm-judge"})
    with pytest.raises(ConfigError, match=r"transformer/config\.json"):
        memplan.make_plan(config, 80 * GiB, cuda=True, env={})


def test_group_offload_is_planned_by_its_resident_share_not_as_fully_resident():
    """24 GiB card: offload=group must fit where model offload fits (it keeps far less on the GPU)."""
    config = cfg("THUDM/CogVideoX-5b", **LOCAL, generator={"offload": "group"})
    plan = memplan.make_plan(config, 24 * GiB, cuda=True, env={})
    assert (plan.placement, plan.generator_offload) == ("offload", "group")
    gen = plan.roles["generator"]
    model = memplan.make_plan(cfg("THUDM/CogVideoX-5b", **LOCAL, generator={"offload": "model"}), 24 * GiB,
                              cuda=True, env={})
    assert memplan.GROUP_RESIDENT + gen.work_bytes + memplan.RESERVE <= plan.peak_bytes <= model.peak_bytes
    assert memplan.build_config(config, plan).generator.offload == "group"


def test_auto_tries_group_offload_before_sequential():
    """Wan2.1-14B at 720p on 24 GiB: model offload does not fit; group (streamed prefetch) is tried before
    sequential, which is left for the card where group does not fit either."""
    config = load_config("wan2.1-14b", **LOCAL)
    plan = memplan.make_plan(config, 24 * GiB, cuda=True, env={})
    assert (plan.placement, plan.generator_offload) == ("offload", "group")
    assert memplan.make_plan(config, 22 * GiB, cuda=True, env={}).generator_offload == "sequential"
