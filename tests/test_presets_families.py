"""Presets for every family, `extends:` (deep merge, chains, cycles), and hidden base presets."""

from __future__ import annotations

import pytest

from phyt2v.config import load_config, preset_names
from phyt2v.errors import BackendNotFound, ConfigError

FAMILY_PRESETS = {"wan2.1-1.3b", "wan2.1-14b", "wan2.2-a14b", "wan2.2-ti2v-5b", "ltx-video", "hunyuanvideo",
                  "hunyuanvideo-1.5", "cogvideox-2b", "cogvideox-5b", "cogvideox1.5-5b", "smoke"}


def test_every_family_has_a_preset_and_bases_are_hidden():
    names = set(preset_names())
    assert FAMILY_PRESETS <= names and not any(n.startswith("_") for n in names)
    assert "_base-cuda" in preset_names(bases=True)
    for name in FAMILY_PRESETS - {"smoke"}:
        cfg = load_config(name)
        assert cfg.note and cfg.preset == name  # each says what it is; the base's note is not inherited
        assert cfg.scorer.backend == "videocon" and cfg.loop.max_rounds == 4  # written once, in the base


def test_preset_settings_match_the_model_cards():
    g = {n: load_config(n).generator for n in FAMILY_PRESETS}
    assert (g["wan2.1-1.3b"].height, g["wan2.1-1.3b"].width, g["wan2.1-1.3b"].flow_shift) == (480, 832, 3.0)
    assert (g["wan2.1-14b"].height, g["wan2.1-14b"].flow_shift) == (720, 5.0)
    assert (g["wan2.2-a14b"].guidance, g["wan2.2-a14b"].guidance_2, g["wan2.2-a14b"].steps) == (4.0, 3.0, 40)
    assert (g["wan2.2-ti2v-5b"].height, g["wan2.2-ti2v-5b"].num_frames, g["wan2.2-ti2v-5b"].fps) == (704, 121, 24)
    assert (g["ltx-video"].decode_timestep, g["ltx-video"].decode_noise_scale, g["ltx-video"].num_frames) == (
        0.03, 0.025, 161)
    assert (g["hunyuanvideo"].guidance, g["hunyuanvideo"].flow_shift, g["hunyuanvideo"].num_frames) == (6.0, 7.0, 129)
    c = g["cogvideox-5b"]  # unchanged paper settings
    assert (c.backend, c.num_frames, c.steps, c.guidance, c.fps, c.height, c.width, c.scheduler, c.dynamic_cfg) == (
        "cogvideox", 49, 50, 6.0, 8, 480, 720, "dpm", True)


def test_extends_deep_merges_chains_and_refuses_cycles(tmp_path):
    f = tmp_path / "phygdpo.yaml"
    f.write_text("extends: wan2.1-1.3b\nnote: mine\ngenerator:\n  lora:\n    - {path: some/lora, scale: 0.8}\n"
                 "loop:\n  max_rounds: 2\n")
    cfg = load_config(file=f)
    assert cfg.generator.model == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" and cfg.generator.flow_shift == 3.0
    assert cfg.generator.lora == [{"path": "some/lora", "scale": 0.8}] and cfg.note == "mine"
    assert cfg.loop.max_rounds == 2 and cfg.loop.patience == 2  # merged key by key, from the base
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: smoke\n")
    assert load_config(file=a).generator.model == "tiny"
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: 7\n")
    with pytest.raises(ConfigError, match="'extends' must name a preset"):
        load_config(file=loop)
    b.write_text("extends: no-such-base\n")
    with pytest.raises(BackendNotFound, match="unknown preset 'no-such-base'"):
        load_config(file=b)


def test_extends_cycle(monkeypatch, tmp_path):
    from phyt2v.config import presets as config

    (tmp_path / "x.yaml").write_text("extends: y\n")
    (tmp_path / "y.yaml").write_text("extends: x\n")
    monkeypatch.setattr(config, "configs_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match="'extends' loops: x -> y -> x"):
        load_config("x")
