"""The real loader on tiny checkpoints in every published layout, and its errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from phyt2v import registry  # noqa: E402
from phyt2v.errors import BackendError, ConfigError, InputError  # noqa: E402
from phyt2v.scorers.mplug_owl.loading import load_model, resolve_model_dir, save_model  # noqa: E402


@pytest.fixture(scope="module")
def reference(tiny_owl):
    model, _ = load_model(tiny_owl)
    return model


def _copy_meta(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("config.json", "tokenizer.model", "preprocessor_config.json"):
        shutil.copy(src / name, dst / name)
    return dst


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("fmt,shards", [("bin", 1), ("bin", 3), ("safetensors", 2)])
def test_every_layout_loads_the_same_weights(tmp_path, tiny_owl, reference, fmt, shards):
    folder = _copy_meta(tiny_owl, tmp_path / "ck")
    save_model(reference, folder, fmt=fmt, shards=shards)
    if shards > 1:
        stem = "pytorch_model.bin" if fmt == "bin" else "model.safetensors"
        index = json.loads((folder / f"{stem}.index.json").read_text())
        assert len(set(index["weight_map"].values())) == shards
    model, cfg = load_model(folder)
    assert cfg.media_length == 65
    assert _same(model, reference)
    assert not any(t.is_meta for t in model.parameters())


def test_bf16_load_keeps_fp32_layernorm_maths(tiny_owl):
    model, _ = load_model(tiny_owl, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    with torch.no_grad():
        media = model.encode_video(torch.randn(1, 3, 4, 224, 224))
    assert media.dtype == torch.bfloat16 and media.shape == (1, 65, 64) and torch.isfinite(media.float()).all()


def test_legacy_rotary_buffers_are_tolerated(tmp_path, tiny_owl, reference):
    folder = _copy_meta(tiny_owl, tmp_path / "ck")
    sd = dict(reference.state_dict())
    sd["language_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    torch.save(sd, folder / "pytorch_model.bin")
    model, _ = load_model(folder)
    assert _same(model, reference)


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_owl, reference):
    folder = _copy_meta(tiny_owl, tmp_path / "ck")
    sd = dict(reference.state_dict())
    sd.pop("abstractor.vit_eos")
    sd["language_model.model.layers.0.self_attn.q_proj.base_layer.weight"] = torch.zeros(1)
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(BackendError) as e:
        load_model(folder)
    msg = str(e.value)
    assert "1 missing" in msg and "abstractor.vit_eos" in msg
    assert "1 unexpected" in msg and "base_layer" in msg


def test_wrong_shape_is_a_clear_error(tmp_path, tiny_owl, reference):
    folder = _copy_meta(tiny_owl, tmp_path / "ck")
    sd = dict(reference.state_dict())
    sd["query_tokens"] = torch.zeros(1, 32, 32)
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(BackendError, match="wrong shape"):
        load_model(folder)


def test_folder_without_weights_or_config(tmp_path, tiny_owl):
    folder = _copy_meta(tiny_owl, tmp_path / "ck")
    with pytest.raises(BackendError, match="no weights"):
        load_model(folder)
    with pytest.raises(BackendError, match="config.json"):
        load_model(tmp_path)


def test_model_names_resolve_or_fail_clearly(tmp_path, monkeypatch, tiny_owl):
    assert resolve_model_dir(str(tiny_owl)) == tiny_owl
    with pytest.raises(InputError, match="neither a checkpoint folder"):
        resolve_model_dir(str(tmp_path / "absent"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(BackendError, match="cannot fetch scorer weights 'videophysics/videocon_physics'"):
        resolve_model_dir("videophysics/videocon_physics")


def test_registry_builds_the_scorer_and_counts_one_load(tiny_owl):
    from phyt2v.config import load_config

    cfg = load_config(overrides=["scorer.backend=videocon", f"scorer.model={tiny_owl}", "scorer.device=cpu",
                                 "scorer.batch_size=3", "scorer.num_frames=4"])
    before = registry.LOADS["scorer"]
    scorer = registry.build("scorer", cfg)
    assert registry.LOADS["scorer"] == before + 1
    assert scorer.backend == "videocon" and scorer.model_id == str(tiny_owl)
    assert scorer.batch_size == 3 and scorer.runtime.num_frames == 4
    assert scorer.runtime.dtype == torch.float32  # auto on CPU
    # the captioner's settings are not the scorer's: changing them does not reload VideoCon
    other = cfg.model_copy(update={"captioner": cfg.captioner.model_copy(
        update={"model": "tiny", "num_frames": 2, "dtype": "bfloat16"})})
    assert registry.build("scorer", other) is scorer and registry.LOADS["scorer"] == before + 1
    moved = cfg.model_copy(update={"scorer": cfg.scorer.model_copy(update={"num_frames": 2})})
    assert registry.build("scorer", moved) is not scorer and registry.LOADS["scorer"] == before + 2


def test_cuda_request_without_gpu_is_a_clear_error(tiny_owl):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from phyt2v.scorers.videocon import VideoConScorer

    with pytest.raises(ConfigError, match="scorer.device is 'cuda'.*no CUDA GPU"):
        VideoConScorer(str(tiny_owl), device="cuda")


def test_unknown_scorer_options_are_named(tiny_owl):
    from phyt2v.config import load_config
    from phyt2v.scorers.videocon import VideoConScorer
    from phyt2v.scorers.videophy2 import VideoPhy2Scorer

    cfg = load_config(overrides=[f"scorer.model={tiny_owl}", "scorer.options={num_frame: 4}"])
    with pytest.raises(ConfigError, match="num_frame"):
        VideoConScorer.from_config(cfg)
    with pytest.raises(ConfigError, match="unknown scorer.options.*num_frame.*known: max_new_tokens"):
        VideoPhy2Scorer.from_config(cfg)
