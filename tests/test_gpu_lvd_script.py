"""scripts/gpu_check_lvd.py rehearsed on CPU: --tiny runs the three arms (guidance off, on with and without gradient
checkpointing) through DiffusersGenerator.generate(layout=) on tiny-wan and writes its JSON; without CUDA and
without --tiny it exits 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check_lvd  # noqa: E402 -- after the path insert


@pytest.mark.slow
def test_tiny_rehearsal_runs_the_three_arms(tmp_path, capsys):
    out = tmp_path / "lvd.json"
    assert gpu_check_lvd.main(["--tiny", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["tiny"] is True and rep["gpu"] is None and rep["weights_gb"] is None
    assert rep["settings"]["guidance"]["iterations"] == 2 and rep["settings"]["guidance"]["steps"] == 2
    off, on, raw = (rep["arms"][k] for k in ("off", "on_checkpointing", "on_no_checkpointing"))
    assert off["guided_steps"] == [] and off["energy"] == [] and off["checkpointing"] is None
    for arm, ck in ((on, True), (raw, False)):
        assert arm["guided_steps"] == [1, 2] and arm["checkpointing"] is ck
        assert [len(e) for e in arm["energy"]] == [2, 2]
        assert arm["objects"] == {"red ball": 2, "wooden table": 2}
    assert on["energy"] == raw["energy"]  # checkpointing changes memory, not the result
    for arm in (off, on, raw):
        assert len(arm["step_s"]) == 4 and arm["frames"] == 9 and arm["bytes"] > 0 and arm["peak_vram_gb"] is None
    assert rep["guided_vs_off"] == pytest.approx(on["seconds"] / off["seconds"], rel=1e-2)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rep


def test_without_cuda_it_refuses_unless_tiny(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the full run would start")
    assert gpu_check_lvd.main(["--out", "/dev/null"]) == 2
    assert "--tiny" in capsys.readouterr().err


def test_guided_steps_need_a_later_step(capsys):
    assert gpu_check_lvd.main(["--tiny", "--steps", "3", "--guided", "3", "--out", "/dev/null"]) == 2
    assert "--guided 3 needs --steps above it" in capsys.readouterr().err
