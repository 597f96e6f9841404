"""scripts/lvd_stage_one.py end to end: plans one prompt per LVD task through the real OpenAI client against a
scripted loopback server, writes an LVD-format cache, scores it and prints the figures; a rerun resumes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llm_servers import FaultyServer, ok

ROOT = Path(__file__).resolve().parents[1]
# one car moving left to right across the middle in every frame
CAR = json.dumps({"reasoning": "it drives right", "background": "road",
                  "objects": [{"name": "car", "boxes": [[20 + 80 * k, 230, 80 + 80 * k, 270] for k in range(6)]}]})


def run(cache, srv):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "lvd_stage_one.py"), "--preset", "smoke",
                           "--per-task", "1", "--cache", str(cache), "--set", "llm.backend=openai",
                           "--set", f"llm.base_url={srv.base_url}", "--set", "llm.model=test"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OPENAI_API_KEY": "sk-test"})


@pytest.mark.slow
def test_stage_one_script(tmp_path):
    cache = tmp_path / "cache.json"
    with FaultyServer([ok(CAR)]) as srv:
        p = run(cache, srv)
        assert p.returncode == 0, p.stderr[-2000:]
        # numeracy, visibility, dynamic spatial, sequential: one call; attribution (a blue cat and a white
        # bird): 'car' is not in its prompt, so one re-ask, then no usable layout
        assert srv.count == 6
    data = json.loads(cache.read_text())
    assert len(data) == 5 and all(len(v) == 1 for v in data.values())
    assert data["A realistic lively video of a scene with one moving car"][0].startswith("Reasoning: it drives right")
    figures = json.loads(p.stdout.strip().splitlines()[-1])
    assert {t: s["success"] for t, s in figures["tasks"].items()} == {
        "numeracy": 1, "attribution": 0, "visibility": 0, "dynamic_spatial": 1, "sequential": 0}
    assert figures["overall"] == {"success": 2, "total": 5, "rate": 0.4} and figures["unreadable"] == 1
    assert "overall            2/5    40.0%" in p.stdout
    with FaultyServer([ok(CAR)]) as srv:
        again = run(cache, srv)
        assert again.returncode == 0 and srv.count == 0
    assert "5 already in" in again.stdout and again.stdout.strip().splitlines()[-1] == p.stdout.strip().splitlines()[-1]
