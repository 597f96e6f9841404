"""The GPU check script runs end to end on CPU with tiny configs (the same code path as on a GPU), without
the packages the GPU machine lacks, and writes sane JSON; its time budget skips instead of running over."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check_generators.py"
# The GPU machine has no pydantic/openai/xllamacpp/phyt2v: importing any of them must fail the run.
RUN = ("import runpy, sys\n"
       "for name in ('pydantic', 'openai', 'xllamacpp', 'phyt2v'): sys.modules[name] = None\n"
       "sys.argv = [sys.argv[0]] + sys.argv[1:]\n"
       f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")


@pytest.mark.slow
def test_tiny_run_writes_sane_json(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}   # no CUDA: switches to the tiny configs by itself
    p = subprocess.run([sys.executable, "-c", RUN, "--out", str(tmp_path), "--steps", "2", "--warmup", "1",
                        "--compile-warmup", "1"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    [file] = tmp_path.glob("*-generators-tiny.json")
    rep = json.loads(file.read_text())
    assert file.name == f"{rep['date'][:10]}-generators-tiny.json"
    assert rep["tiny"] is True and rep["device"] == "cpu" and rep["gpu"] is None
    for key in ("torch", "diffusers", "transformers", "settings", "total_s"):
        assert rep[key], key
    assert set(rep["models"]) == {"wan2.1-1.3b", "cogvideox-5b"}
    for name, m in rep["models"].items():
        assert m["params"] > 0 and len(m["latents"]) == 4 and len(m["text"]) == 2
        assert [(r["compile"], r["cache"]) for r in m["runs"]] == [(False, False), (False, True), (True, False), (True, True)]
        for r in m["runs"]:
            assert r["error"] is None, (name, r)
            assert r["steps_timed"] == 2 and len(r["s_per_step"]) == 2
            assert 0 < r["s_per_step_median"] < 120 and all(math.isfinite(v) and v > 0 for v in r["s_per_step"])
            assert r["peak_vram_gb"] is None and r["latents_finite"] is True
            assert r["cache_hooks"] == (2 if r["cache"] else 0)   # every block of the 2-block model
    assert rep["models"]["wan2.1-1.3b"]["compile_mode"] == "compile_repeated_blocks"
    assert rep["models"]["cogvideox-5b"]["compile_mode"].startswith("each of 2 blocks")
    assert rep["models"]["wan2.1-1.3b"]["config"]["num_layers"] == 2
    assert "wrote" in p.stdout and "s/step" in p.stdout


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check_generators", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_full_size_numbers_are_the_published_ones():
    m = load_script()
    wan, cog = m.MODELS["wan2.1-1.3b"], m.MODELS["cogvideox-5b"]
    assert (wan.full["num_layers"], wan.full["num_attention_heads"] * wan.full["attention_head_dim"],
            wan.full["ffn_dim"], wan.full["text_dim"]) == (30, 1536, 8960, 4096)
    assert (cog.full["num_layers"], cog.full["num_attention_heads"] * cog.full["attention_head_dim"],
            cog.full["text_embed_dim"]) == (42, 3072, 4096)
    # latents at the presets' sizes: VAE 8x spatial, 4x temporal (+1), 16 channels
    assert wan.latents == (16, (81 - 1) // 4 + 1, 480 // 8, 832 // 8)
    assert cog.latents == (16, (49 - 1) // 4 + 1, 480 // 8, 720 // 8)


def test_full_size_models_take_their_inputs_on_the_meta_device():
    """The full-size path (sizes, text shapes, CogVideoX RoPE, CFG) runs without memory on 'meta'."""
    torch = pytest.importorskip("torch")
    m = load_script()
    params = {}
    for name, spec in m.MODELS.items():
        model = m.build(spec, False, "meta", torch.bfloat16)
        params[name] = sum(p.numel() for p in model.parameters()) / 1e9
        inputs = m.make_inputs(spec, model, False, "meta", torch.bfloat16)
        m.denoise_step(model, spec, inputs, 500.0, 20.0)
        assert inputs["x"].dtype == torch.bfloat16
    # the published sizes (Wan2.1-T2V-1.3B: 1.42 B, CogVideoX-5B: 5.57 B parameters)
    assert round(params["wan2.1-1.3b"], 2) == 1.42 and round(params["cogvideox-5b"], 2) == 5.57


def test_time_budget_skips_instead_of_running(tmp_path, capsys):
    m = load_script()
    code = m.main(["--tiny", "--out", str(tmp_path), "--budget-s", "0"])
    assert code == 1   # nothing measured
    rep = json.loads(next(tmp_path.glob("*.json")).read_text())
    runs = [r for mod in rep["models"].values() for r in mod["runs"]]
    assert len(runs) == 8 and all(r["error"] == "skipped: time budget spent" for r in runs)
