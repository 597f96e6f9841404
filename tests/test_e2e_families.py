"""Every family through the whole refine loop. The CLI on a Wan folder saved with save_pretrained outside
phyt2v's tiny builder (real embedded SmolLM2); LTX-Video, HunyuanVideo and the smoke preset in-process
with real tiny generator, captioner and scorer and a scripted LLM (the LLM is not what these test)."""

from __future__ import annotations

import json

import pytest
from doubles import physics_llm
from test_e2e_smoke import run_cli, the_run

from phyt2v import registry
from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.store.video_io import probe

pytestmark = pytest.mark.slow  # end-to-end: real subprocesses and models, minutes on 2 cores


def _save_wan(folder):
    """A WanPipeline built here from diffusers classes (1 block, 4 heads x 8), not by phyt2v.tiny."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from phyt2v.tiny.text import t5_tokenizer

    tok = t5_tokenizer()
    torch.manual_seed(1)
    pipe = WanPipeline(
        tokenizer=tok,
        text_encoder=UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=16, d_ff=24, d_kv=4, num_layers=1,
                                                 num_heads=4, relative_attention_num_buckets=8)),
        vae=AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                             temperal_downsample=[False, True, True]),
        transformer=WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=8,
                                          in_channels=16, out_channels=16, text_dim=16, freq_dim=64, ffn_dim=16,
                                          num_layers=1, rope_max_seq_len=32),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0))
    pipe.save_pretrained(str(folder))
    return folder


def test_cli_refine_on_a_saved_wan_folder(tmp_path):
    folder = _save_wan(tmp_path / "my-wan")
    out = tmp_path / "runs"
    common = ["--preset", "smoke", "--set", "generator.backend=diffusers",
              "--set", f"generator.model={folder}", "--set", "generator.fps=null", "--set", "generator.guidance=null",
              "--set", "generator.width=32"]
    bad = run_cli("refine", "a ball falls", *common, "--out", str(tmp_path / "bad"), "--set", "generator.num_frames=11")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line = " ".join(bad.stderr.split())
    assert "generator.num_frames 11 must be 4k+1" in line and "e.g. 9 or 13" in line
    p = run_cli("refine", "a ball falls onto the floor", *common, "--out", str(out), "--set", "generator.num_frames=13",
                "--set", "loop.max_rounds=1", "--set", "loop.min_rounds=1", "--set", "loop.threshold=1.0")
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(out)
    assert rec.token_budget == 512 and rec.models["generator"].startswith("diffusers:")  # the pipeline's own
    info = rec.rounds[0].video_info
    assert info["family"] == "wan" and info["num_frames"] == 13 and info["fps"] == 16 and info["guidance"] == 5.0
    assert info["width"] == 32 and info["truncated"] is False and info["token_counts"]["text_encoder"] == 7  # 6 words + EOS
    v = probe(run_dir / rec.rounds[0].video)
    assert (v.num_frames, v.width, v.height, round(v.fps)) == (13, 32, 16, 16)


@pytest.fixture
def fresh_registry():
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.mark.parametrize("model, size, budget, fps", [("tiny-ltx", 32, 128, 25), ("tiny-hunyuan", 16, 256, 24)])
def test_family_through_the_refine_loop(tmp_path, fresh_registry, model, size, budget, fps):
    cfg = load_config("smoke", overrides=[
        "generator.backend=diffusers", f"generator.model={model}", f"generator.height={size}",
        f"generator.width={size}", "generator.fps=null", "generator.guidance=null", "loop.max_rounds=2"],
        out=str(tmp_path))
    res = Refiner(cfg, llm=physics_llm()).refine("A rubber ball falls onto the wooden floor and bounces")
    rec = res.record
    assert rec.status == "finished" and len(rec.rounds) == 2 and rec.token_budget == budget
    for r in rec.rounds:
        assert r.video_info["num_frames"] == 9 and r.video_info["fps"] == fps
        assert probe(res.run_dir / r.video).num_frames == 9


def test_smoke_takes_an_ordinary_twenty_word_prompt(tmp_path, fresh_registry):
    prompt = ("A small red ball rolls across the wooden table, falls off the edge, "
              "and bounces twice on the stone floor")
    assert len(prompt.split()) == 20
    cfg = load_config("smoke", overrides=["loop.max_rounds=1", "loop.min_rounds=1"], out=str(tmp_path))
    rec = Refiner(cfg, llm=physics_llm()).refine(prompt).record
    assert rec.status == "finished" and rec.rounds[0].prompt_tokens <= rec.token_budget == 64
    assert json.loads((tmp_path / rec.run_id / "run.json").read_text())["rounds"][0]["video_info"]["family"] == "cogvideox"
