"""scripts/gpu_check_seeds.py rehearsed on CPU: --tiny runs both arms (N seeds in one call, N separate calls)
through generate_many/generate and writes its JSON; the full-size Wan2.1-1.3B it builds on the GPU is the
published architecture (built on the meta device here); without CUDA and without --tiny it exits 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check_seeds  # noqa: E402

KEYS = {"date", "gpu", "device", "tiny", "torch", "diffusers", "transformers", "cuda", "python", "model",
        "transformer_params", "settings", "build_s", "weights_gb", "arms", "speedup", "total_s"}
ARM_KEYS = {"seconds", "s_per_video", "peak_vram_gb", "pipeline_calls", "videos"}


@pytest.mark.slow
def test_tiny_rehearsal_runs_both_arms(tmp_path, capsys):
    out = tmp_path / "seeds.json"
    assert gpu_check_seeds.main(["--tiny", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep) == KEYS and rep["tiny"] is True and rep["gpu"] is None and rep["weights_gb"] is None
    assert rep["settings"]["seeds"] == [0, 1, 2, 3] and rep["settings"]["steps"] == 2
    for name, calls in (("batched", 1), ("separate", 4)):
        arm = rep["arms"][name]
        assert set(arm) == ARM_KEYS and arm["pipeline_calls"] == calls, name
        assert [v["seed"] for v in arm["videos"]] == [0, 1, 2, 3]
        assert all(v["frames"] == 9 and v["bytes"] > 0 for v in arm["videos"])
        assert arm["seconds"] > 0 and arm["peak_vram_gb"] is None  # no GPU: no VRAM figure
    assert rep["speedup"] > 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == rep and lines[0].startswith("batched: 4 videos in 1 call(s)")


def test_without_cuda_or_tiny_it_exits_2(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check_seeds.main(["--out", str(tmp_path / "x.json")]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_full_size_pipeline_is_the_published_wan_1_3b():
    from phyt2v.runtime import paramcount

    pipe = gpu_check_seeds.build_pipeline("meta")
    table = paramcount.PUBLISHED["Wan-AI/Wan2.1-T2V-1.3B-Diffusers"]
    assert paramcount.count_parameters(pipe.transformer) == table["transformer"]
    assert paramcount.count_parameters(pipe.text_encoder) == table["text_encoder"]
    assert paramcount.count_parameters(pipe.vae) == table["vae"]
    torch = pytest.importorskip("torch")
    assert pipe.transformer.dtype == pipe.text_encoder.dtype == pipe.vae.dtype == torch.bfloat16
    assert gpu_check_seeds.FULL == {"height": 480, "width": 832, "frames": 81, "steps": 4}
