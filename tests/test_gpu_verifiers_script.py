"""scripts/gpu_check_verifiers.py rehearsed on CPU: --tiny scores 4 candidates with VideoScore2 and with the ensemble
of three scorers through phyt2v's code and writes its JSON; the full-size models it builds on the GPU are the
published architectures (built on the meta device here); without CUDA and without --tiny it exits 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check_verifiers as script  # noqa: E402

KEYS = {"date", "gpu", "device", "tiny", "torch", "transformers", "cuda", "python", "settings", "params", "build_s",
        "weights_gb", "videoscore2", "ensemble", "total_s"}


@pytest.mark.slow
def test_tiny_rehearsal_scores_four_candidates_and_writes_its_json(tmp_path, capsys):
    out = tmp_path / "verifiers.json"
    assert script.main(["--tiny", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep) == KEYS and rep["tiny"] is True and rep["gpu"] is None and rep["weights_gb"] is None
    assert rep["settings"]["candidates"] == 4 and rep["settings"]["new_tokens"] == 64
    vs2 = rep["videoscore2"]
    assert len(vs2["s_per_video"]) == 4 and all(s > 0 for s in vs2["s_per_video"]) and vs2["peak_vram_gb"] is None
    assert vs2["parsed"] is True and vs2["sampled_frames"] == 4  # 9 frames at 8 fps: the card's minimum of 4
    assert vs2["reply_tokens"] == [64]  # every reply forced to the same length (the tiny model would stop at 7)
    ens = rep["ensemble"]
    assert ens["members"] == ["videocon", "videophy2", "videoscore2"] and ens["unscored"] == 0
    assert [c["video"] for c in ens["candidates"]] == [f"video-s{i}.mp4" for i in range(4)]
    for c in ens["candidates"]:
        assert all(0 <= c[m]["sa"] <= 1 and 0 <= c[m]["pc"] <= 1 for m in ens["members"])
    assert ens["best_by_mean"] in range(4) and ens["best_by_rank"] in range(4) and ens["s_per_video"] > 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == rep and lines[0].startswith("videoscore2: ")


def test_without_cuda_or_tiny_it_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert script.main(["--out", str(tmp_path / "x.json")]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_full_size_models_are_the_published_architectures():
    from phyt2v.runtime import paramcount

    scorers = script.make_scorers(True, "cpu", 8)
    params = script.full_size(scorers, "meta")  # what the GPU run builds, on the meta device
    assert params["videoscore2"] == paramcount.PUBLISHED["TIGER-Lab/VideoScore2"]["model"]
    assert params["videocon"] == params["videophy2"] == paramcount.PUBLISHED["videophysics/videocon_physics"]["model"]
    vs2 = scorers["videoscore2"]
    assert vs2.model.dtype == torch.bfloat16 and vs2.model.config.image_token_id == \
        vs2.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert vs2.model.config.text_config.rope_parameters["mrope_section"] == [16, 24, 24]
    assert vs2.processor.image_processor.size["longest_edge"] == 768 * 28 * 28  # the card's frames, not 16 patches
    assert scorers["videocon"].runtime.model.dtype == torch.bfloat16 and scorers["videocon"].runtime.image_size == 224
    assert script.FULL == {"height": 480, "width": 720, "frames": 49, "fps": 8, "new_tokens": 256}
