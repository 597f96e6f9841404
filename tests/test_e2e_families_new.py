"""The newer families, and HunyuanVideo 1.5 and Mochi, through the whole refine loop on the smoke preset: each tiny
pipeline in-process with the smoke preset's real tiny captioner and scorer and a scripted LLM (the LLM is not what
these test); and the CLI on a Sana-Video folder saved with save_pretrained here, not by phyt2v's tiny builders."""

from __future__ import annotations

import pytest
from doubles import physics_llm
from test_e2e_smoke import run_cli, the_run

from phyt2v import registry
from phyt2v.config import load_config
from phyt2v.generators.audio import probe_audio
from phyt2v.loop import Refiner
from phyt2v.store.video_io import probe

pytestmark = pytest.mark.slow

# tiny model -> (family, frames, side, the pipeline's own token budget, fps)
RUNS = {"tiny-ltx2": ("ltx2", 9, 32, 1024, 24), "tiny-kandinsky5": ("kandinsky5", 9, 16, 512, 24),
        "tiny-skyreels": ("skyreels-v2", 9, 16, 512, 24), "tiny-skyreels-df": ("skyreels-v2-df", 9, 16, 512, 24),
        "tiny-sana-video": ("sana-video", 9, 32, 300, 16), "tiny-cosmos": ("cosmos-predict2.5", 9, 16, 512, 16),
        "tiny-motif": ("motif-video", 9, 16, 512, 24), "tiny-hunyuan15": ("hunyuanvideo-1.5", 9, 16, 1000, 24),
        "tiny-mochi": ("mochi", 7, 16, 256, 30)}


@pytest.fixture
def fresh_registry():
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.mark.parametrize("model", list(RUNS))
def test_family_through_the_refine_loop(tmp_path, fresh_registry, model):
    family, frames, side, budget, fps = RUNS[model]
    cfg = load_config("smoke", overrides=[
        "generator.backend=diffusers", f"generator.model={model}", f"generator.num_frames={frames}",
        f"generator.height={side}", f"generator.width={side}", "generator.fps=null", "generator.guidance=null",
        "loop.max_rounds=2"], out=str(tmp_path))
    res = Refiner(cfg, llm=physics_llm()).refine("A rubber ball falls onto the wooden floor and bounces")
    rec = res.record
    assert rec.status == "finished" and len(rec.rounds) == 2 and rec.token_budget == budget
    for r in rec.rounds:
        info = r.video_info
        assert (info["family"], info["num_frames"], info["fps"], info["width"]) == (family, frames, fps, side)
        assert r.scores is not None and r.caption
        video = res.run_dir / r.video
        assert probe(video).num_frames == frames
        assert (info["audio"] is not None) is (model == "tiny-ltx2") is (probe_audio(video) is not None)


def _save_sana_video(folder):
    """A SanaVideoPipeline built here from diffusers and transformers classes (1 block, Gemma-2 of one layer)."""
    import torch
    from diffusers import AutoencoderKLWan, DPMSolverMultistepScheduler, SanaVideoPipeline, SanaVideoTransformer3DModel
    from transformers import Gemma2Config, Gemma2Model

    from phyt2v.tiny.text import word_tokenizer

    tok = word_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>"], bos="<bos>", max_length=2048)
    torch.manual_seed(2)
    pipe = SanaVideoPipeline(
        tokenizer=tok,
        text_encoder=Gemma2Model(Gemma2Config(head_dim=8, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                              num_attention_heads=2, num_key_value_heads=1, vocab_size=len(tok),
                                              max_position_embeddings=2048, pad_token_id=0)),
        vae=AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                             temperal_downsample=[False, True, True]),
        transformer=SanaVideoTransformer3DModel(in_channels=16, out_channels=16, num_attention_heads=2,
                                                attention_head_dim=8, num_layers=1, num_cross_attention_heads=2,
                                                cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=8,
                                                sample_size=8, patch_size=(1, 2, 2), qk_norm="rms_norm_across_heads",
                                                rope_max_seq_len=32),
        scheduler=DPMSolverMultistepScheduler())
    pipe.save_pretrained(str(folder))
    return folder


def test_cli_refine_on_a_saved_sana_video_folder(tmp_path):
    folder = _save_sana_video(tmp_path / "my-sana")
    common = ["--preset", "smoke", "--set", "generator.backend=diffusers", "--set", f"generator.model={folder}",
              "--set", "generator.fps=null", "--set", "generator.guidance=null", "--set", "generator.height=32",
              "--set", "generator.width=32"]
    bad = run_cli("refine", "a ball falls", *common, "--out", str(tmp_path / "bad"), "--set", "generator.num_frames=11")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line = " ".join(bad.stderr.split())
    assert "generator.num_frames 11 must be 4k+1" in line and "(sana-video)" in line and "e.g. 9 or 13" in line
    out = tmp_path / "runs"
    p = run_cli("refine", "a ball falls onto the floor", *common, "--out", str(out), "--set", "generator.num_frames=13",
                "--set", "loop.max_rounds=1", "--set", "loop.min_rounds=1", "--set", "loop.threshold=1.0")
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir, rec = the_run(out)
    assert rec.token_budget == 300  # the pipeline's max_sequence_length, counted as it encodes
    info = rec.rounds[0].video_info
    assert info["family"] == "sana-video" and info["num_frames"] == 13 and info["fps"] == 16
    v = probe(run_dir / rec.rounds[0].video)
    assert (v.num_frames, v.width, v.height) == (13, 32, 32)
