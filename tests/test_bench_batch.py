"""scripts/bench_batch.py runs end to end on a small setting and prints its figures (the targets themselves
are measured by running the script, not asserted here: a loaded CI machine is too noisy)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_bench_batch_prints_its_figures(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_batch.py"), "--prompts", "3",
                        "--concurrency", "3", "--steps", "4", "--draft-rounds", "2", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 0, p.stderr[-3000:]
    figures = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"sequential_s", "pipelined_s", "generator_busy", "draft_step_fraction"} <= set(figures)
    assert figures["results_equal"] is True
    assert 0 < figures["generator_busy"] <= 1
    # 2 draft rounds at 1 step (0.25 x 4) + one full render of 4 steps, over 2 x 4 full steps
    assert figures["draft_step_fraction"] == pytest.approx((2 * 1 + 4) / (2 * 4))
    assert "results equal to sequential: True" in p.stdout
