"""What a generator is, known before it loads: the published table against the script that writes it, the memory
plan's working-memory estimate from the family's facts (not from model-id substrings), HunyuanVideo 1.5's own
defaults, and the token budget from the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from phyt2v.config import load_config
from phyt2v.runtime import memplan, paramcount

ROOT = Path(__file__).resolve().parents[1]
GiB = 2**30

# generator working memory (GiB, bf16) of each preset as the estimate gave it before it read the families' facts
# (GEN_SHAPES / FAMILY_SIZES tables): the refactor keeps them.
BEFORE = {"cogvideox-2b": 3.506, "cogvideox-5b": 4.41, "cogvideox1.5-5b": 8.163, "hunyuanvideo": 18.315,
          "local-24gb": 4.249, "local-48gb": 4.41, "ltx-video": 2.634, "wan2.1-1.3b": 4.249, "wan2.1-14b": 19.303,
          "wan2.1-14b-phygdpo": 9.498, "wan2.2-a14b": 19.303, "wan2.2-ti2v-5b": 5.746}


@pytest.fixture(scope="module")
def param_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import param_table

        yield param_table
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_shipped_configs_are_what_the_script_writes(param_table):
    assert param_table.configs() == paramcount.PUBLISHED_CONFIGS
    assert set(param_table.PIPELINES) <= set(paramcount.PUBLISHED)  # every pipeline has its parameter counts


@pytest.mark.slow
def test_hunyuanvideo_15_counts_are_what_the_script_builds(param_table):
    """HunyuanVideo 1.5 480p T2V built on meta from its published configs (the 8.3B transformer it is known for)."""
    hy15 = "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v"
    t = param_table
    assert paramcount.PUBLISHED[hy15] == {
        "transformer": t.dm("HunyuanVideo15Transformer3DModel", t.HY15_480P),
        "text_encoder": t.tm(t.QWEN25VL_7B_TEXT, "Qwen2_5_VLTextModel"),
        "text_encoder_2": t.tm(t.BYT5_SMALL, "T5EncoderModel"), "vae": t.dm("AutoencoderKLHunyuanVideo15", {})}
    assert abs(paramcount.PUBLISHED[hy15]["transformer"] / 8.3e9 - 1) < 0.01


@pytest.mark.parametrize("preset, gib", BEFORE.items())
def test_generator_working_memory_of_the_presets_is_unchanged(preset, gib):
    work = memplan._gen_work(load_config(preset), 2)
    assert abs(work / GiB / gib - 1) < 0.001


def test_working_memory_reads_the_family_facts():
    # HunyuanVideo 1.5 480p: hidden 16 x 128, VAE x16 and patch 1 (16 px a token), 4 frames a token, and the
    # pipeline's own 480x848 (16:9 nearest its 640 bucket) when the preset leaves the size to it. The old tables
    # matched it as HunyuanVideo (hidden 3072, 720x1280): 17.3 GiB.
    from phyt2v.generators.footprint import render_shape

    config = load_config("hunyuanvideo-1.5")
    assert render_shape(config.generator) == {"hidden": 2048, "pixels_per_token": 16, "frames_per_token": 4,
                                              "height": 480, "width": 848, "num_frames": 121}
    tokens = 31 * 30 * 53
    assert memplan._gen_work(config, 2) == memplan.GEN_FIXED + 2 * tokens * 2048 * memplan.GEN_LIVE_TENSORS * 2
    # CogVideoX1.5 patches latent frames in pairs: 8 frames a token; CogVideoX-5B 4
    cog15 = render_shape(load_config("cogvideox1.5-5b").generator)
    assert (cog15["hidden"], cog15["frames_per_token"], cog15["pixels_per_token"]) == (3072, 8, 16)
    # a model nothing knows: the configured size, CogVideoX-5B's shape otherwise
    unknown = load_config(overrides=["generator.backend=diffusers", "generator.model=nobody/video",
                                     "generator.height=240"])
    assert render_shape(unknown.generator) is None
    s = memplan._render_shape(unknown)
    assert (s["height"], s["width"], s["hidden"]) == (240, 720, 3072)


def test_a_local_folder_is_read_over_the_table(tmp_path):
    """A folder's own transformer config decides the estimate (its hidden size, its patch)."""
    from phyt2v.generators.footprint import render_shape
    from phyt2v.tiny import tiny_model_dir

    shape = render_shape(load_config(overrides=["generator.backend=diffusers", "generator.model=tiny-wan",
                                                 "generator.height=16", "generator.width=32",
                                                 "generator.num_frames=9"]).generator)
    import json

    tr = json.loads((tiny_model_dir("wan") / "transformer" / "config.json").read_text())
    assert shape == {"hidden": tr["num_attention_heads"] * tr["attention_head_dim"], "pixels_per_token": 16,
                     "frames_per_token": 4, "height": 16, "width": 32, "num_frames": 9}


def test_hunyuan15_defaults_are_the_pipelines_own():
    import diffusers

    from phyt2v.generators.families import Hunyuan15, signature_defaults

    sig = signature_defaults(diffusers.HunyuanVideo15Pipeline)
    fam = Hunyuan15()
    assert (fam.defaults(sig, {"target_size": 640})["height"], fam.defaults(sig, {"target_size": 640})["width"]) == \
        (480, 848)
    assert (fam.defaults(sig, {"target_size": 960})["height"], fam.defaults(sig, {"target_size": 960})["width"]) == \
        (720, 1280)


def test_token_budget_before_download_from_the_table():
    """`phyt2v enhance` never loads the generator: a hub id not on this machine gets its family's budget from the
    table (HunyuanVideo: the Llama encoder's 256), not the 128-token fallback."""
    from phyt2v.generators.budget import budget_before_load

    def budget(preset):
        return budget_before_load(load_config(preset).generator)

    assert (budget("hunyuanvideo"), budget("wan2.1-1.3b"), budget("ltx-video"), budget("cogvideox-5b")) == \
        (256, 512, 128, 226)
