"""Tiny random-weight models and the CogVideoX generator backend, on CPU, offline."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from phyt2v import registry  # noqa: E402
from phyt2v.config import Config  # noqa: E402
from phyt2v.errors import BackendError, ConfigError, InputError  # noqa: E402
from phyt2v.store.video_io import probe, read_frames  # noqa: E402

SMOKE = dict(height=16, width=16, num_frames=9, steps=2)


@pytest.fixture(scope="module")
def gen():
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    before = registry.LOADS["generator"]
    g = CogVideoXGenerator("tiny", **SMOKE)
    assert registry.LOADS["generator"] == before + 1
    return g


def _frames(path):
    frames, _ = read_frames(path)
    return np.stack(frames).astype(np.int16)


def test_build_tiny_cogvideox_is_deterministic(tmp_path):
    import torch
    from diffusers import CogVideoXPipeline

    from phyt2v.tiny.cogvideox import build_tiny_cogvideox

    a = CogVideoXPipeline.from_pretrained(build_tiny_cogvideox(tmp_path / "a"))
    b = CogVideoXPipeline.from_pretrained(build_tiny_cogvideox(tmp_path / "b"))
    for name in ("transformer", "vae", "text_encoder"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert a.transformer.config.max_text_seq_length == 64
    # ordinary words are in the vocabulary, unknown ones map to <unk>, EOS is appended
    ids = a.tokenizer("A ball falls onto the floor").input_ids
    assert len(ids) == 7 and ids[-1] == a.tokenizer.eos_token_id
    assert a.tokenizer.unk_token_id not in ids
    assert a.tokenizer("zyzzyva").input_ids == [a.tokenizer.unk_token_id, a.tokenizer.eos_token_id]


def test_tiny_model_dir_builds_once_and_atomically(tmp_path, monkeypatch):
    from phyt2v.tiny import build as tiny

    monkeypatch.setenv("PHYT2V_CACHE", str(tmp_path))
    calls = []
    real = tiny._BUILDERS["vlm"]
    monkeypatch.setitem(tiny._BUILDERS, "vlm", lambda p: (calls.append(p), real(p))[1])
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(tiny.tiny_model_dir("vlm"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = tmp_path / "tiny" / f"vlm-{tiny.VERSION}"
    assert results == [final, final]
    assert (final / ".complete").is_file() and (final / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == [final.name]  # no temp leftovers
    n = len(calls)
    assert tiny.tiny_model_dir("vlm") == final and len(calls) == n  # cached: no rebuild
    with pytest.raises(ValueError, match="sora"):
        tiny.tiny_model_dir("sora")


def test_generate_writes_real_mp4(gen, tmp_path):
    steps = []
    out = gen.generate("A ball falls onto the floor", seed=1, out_path=tmp_path / "v.mp4",
                       on_step=lambda i, n: steps.append((i, n)))
    assert steps == [(1, 2), (2, 2)]
    info = probe(out.path)
    assert (info.num_frames, info.width, info.height, round(info.fps)) == (9, 16, 16, 8)
    assert (out.num_frames, out.width, out.height, out.fps, out.seed) == (9, 16, 16, 8, 1)
    assert out.prompt_tokens == 7 and out.truncated is False
    assert out.path == tmp_path / "v.mp4" and not list(tmp_path.glob("*.partial.mp4"))


def test_seed_and_prompt_decide_the_video(gen, tmp_path):
    a = gen.generate("A ball falls onto the floor", seed=3, out_path=tmp_path / "a.mp4")
    b = gen.generate("A ball falls onto the floor", seed=3, out_path=tmp_path / "b.mp4")
    c = gen.generate("Water pours into a glass cup", seed=3, out_path=tmp_path / "c.mp4")
    d = gen.generate("A ball falls onto the floor", seed=4, out_path=tmp_path / "d.mp4")
    assert a.path.read_bytes() == b.path.read_bytes()
    fa = _frames(a.path)
    assert np.array_equal(fa, _frames(b.path))
    assert np.abs(fa - _frames(c.path)).mean() > 1.0
    assert np.abs(fa - _frames(d.path)).mean() > 1.0


def test_count_tokens_and_truncation(gen, tmp_path):
    assert gen.max_prompt_tokens == 64 == gen.model_limit  # from transformer.config.max_text_seq_length
    assert gen.count_tokens("a ball falls") == 4  # three words + EOS
    long = "a red ball falls onto the wooden floor and bounces " * 7
    assert gen.count_tokens(long) == 71
    out = gen.generate(long, seed=0, out_path=tmp_path / "long.mp4")
    assert out.truncated is True and out.prompt_tokens == 71
    assert probe(out.path).num_frames == 9


def test_paper_settings_from_config(gen):
    from diffusers import CogVideoXDPMScheduler

    cfg = Config(generator={"model": "tiny", **SMOKE, "options": {"negative_prompt": "blurry"}})
    g = registry.build("generator", cfg)
    assert type(g).__name__ == "CogVideoXGenerator" and g.backend == "cogvideox" and g.model_id == "tiny"
    assert isinstance(g.pipe.scheduler, CogVideoXDPMScheduler)
    assert g.pipe.scheduler.config.timestep_spacing == "trailing"
    assert g.dynamic_cfg is True and g.guidance == 6.0 and g.negative_prompt == "blurry"
    assert g.pipe.vae.use_tiling and g.pipe.vae.use_slicing
    assert g.offload == "none" and str(g.pipe.transformer.dtype) == "torch.float32"  # CPU: fp32, no offload
    ddim = registry.build("generator", Config(generator={"model": "tiny", **SMOKE, "scheduler": "ddim"}))
    assert type(ddim.pipe.scheduler).__name__ == "CogVideoXDDIMScheduler"
    with pytest.raises(ConfigError, match="unknown generator.options"):
        registry.build("generator", Config(generator={"model": "tiny", **SMOKE, "options": {"cache": 1}}))


@pytest.mark.parametrize("kw, match", [
    ({"height": 24}, r"generator.height 24 must be a multiple of 16"),
    ({"width": 20}, r"generator.width 20 must be a multiple of 16"),
    ({"num_frames": 13}, r"generator.num_frames 13 must be 8k\+1"),
    ({"max_prompt_tokens": 300}, r"max_prompt_tokens 300 is over the model's limit of 64"),
])
def test_bad_settings_name_the_value(gen, kw, match):
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    with pytest.raises(ConfigError, match=match):
        CogVideoXGenerator("tiny", pipeline=gen.pipe, **{**SMOKE, **kw})


def test_clear_load_errors(tmp_path, gen):
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    with pytest.raises(BackendError, match="model path not found: ./no/such/model"):
        CogVideoXGenerator("./no/such/model", **SMOKE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="no model_index.json"):
        CogVideoXGenerator(str(tmp_path / "empty"), **SMOKE)
    with pytest.raises(BackendError, match="nobody/not-a-model.*hf download"):  # offline: fails at once
        CogVideoXGenerator("nobody/not-a-model", **SMOKE)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="offload 'model' needs a CUDA GPU"):
            CogVideoXGenerator("tiny", offload="model", pipeline=gen.pipe, **SMOKE)
        with pytest.raises(ConfigError, match="generator.device is 'cuda' but CUDA is not available"):
            CogVideoXGenerator("tiny", device="cuda", pipeline=gen.pipe, **SMOKE)
    with pytest.raises(InputError, match="empty prompt"):
        gen.generate("  ", seed=0, out_path=tmp_path / "x.mp4")


def test_frames_rule_follows_temporal_patching(gen):
    """CogVideoX1.5 patches latents in time (patch_size_t=2): 16k+1 frames instead of 8k+1."""
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    other = dict(SMOKE, num_frames=17)
    CogVideoXGenerator("tiny", pipeline=gen.pipe, **other)  # 17 = 8*2+1 is fine without temporal patches
    old = gen.pipe.transformer.config.get("patch_size_t")
    gen.pipe.transformer.register_to_config(patch_size_t=2)
    try:
        with pytest.raises(ConfigError, match="num_frames 9 must be 16k\\+1"):
            CogVideoXGenerator("tiny", pipeline=gen.pipe, **SMOKE)
        CogVideoXGenerator("tiny", pipeline=gen.pipe, **other)
    finally:
        gen.pipe.transformer.register_to_config(patch_size_t=old)
