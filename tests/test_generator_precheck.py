"""Generator settings refused before any weight loads or downloads (Refiner / Batch start, `phyt2v doctor`): every
preset against its model's family (known from the published table, never the hub), family-only options, shapes,
cache-hook params and draft settings; the same checks again as the tiny models load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phyt2v import Refiner, registry
from phyt2v.config import load_config, preset_names
from phyt2v.errors import ConfigError
from phyt2v.generators.precheck import family_before_load

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_passes_its_familys_checks_before_load(preset):
    config = load_config(preset)
    if registry.is_remote("generator", config):  # a served model: no diffusers family to check
        Refiner(config)
        return
    family, index = family_before_load(config.generator.model)
    assert family.classes, f"{config.generator.model}: no family known before loading (add it to the table)"
    assert index.source in ("folder", "table")  # never the network; the hub cache is empty here
    registry.resolve("generator", config.generator.backend).check_before_load(config)
    Refiner(config)  # the same check at Refiner start


def _refused(overrides, match, preset="wan2.1-1.3b"):
    before = registry.LOADS["generator"]
    with pytest.raises(ConfigError, match=match):
        Refiner(load_config(preset, overrides=overrides))
    assert registry.LOADS["generator"] == before  # nothing loaded


@pytest.mark.parametrize("overrides, match", [
    (["generator.scheduler=dpm"], r"generator.scheduler does not apply to wan pipelines"),
    (["generator.dynamic_cfg=false"], r"generator.dynamic_cfg does not apply to wan"),
    (["generator.height=470"], r"generator.height 470 must be a multiple of 16 .* e.g. 464 or 480"),
    (["generator.num_frames=80"], r"generator.num_frames 80 must be 4k\+1 .* e.g. 77 or 81"),
    (["generator.backend=cogvideox"], r"generator.backend cogvideox needs a cogvideox pipeline, but "
                                      r"Wan-AI/Wan2.1-T2V-1.3B-Diffusers is WanPipeline"),
])
def test_family_settings_refused_at_refiner_start_from_the_table(overrides, match):
    _refused(overrides, match)


def test_ltx_sides_and_cogvideox_options_from_the_table():
    _refused(["generator.width=720"], r"generator.width 720 must be a multiple of 32", preset="ltx-video")
    _refused(["generator.flow_shift=3"], r"generator.flow_shift does not apply to cogvideox", preset="cogvideox-5b")


@pytest.mark.parametrize("cache, match", [
    ("{kind: first-block, params: {threshold: x}}", r"generator.cache 'first-block': params.threshold 'x' is not "
                                                    r"float .*fix generator.cache.params.threshold"),
    ("{kind: first-block, params: {thresh: 0.1}}", r"unknown params \['thresh'\]; FirstBlockCacheConfig takes "
                                                   r"threshold"),
    ("{kind: pab, params: {spatial_attention_block_skip_range: a}}", r"params.spatial_attention_block_skip_range"),
    ("{kind: faster}", r"generator.cache 'faster': .* wan pipelines do not run; set "
                       r"generator.cache.params.is_guidance_distilled=true"),
    ("{kind: mag}", r"generator.cache 'mag' with params \{\}: .*mag_ratios"),
])
def test_bad_cache_hooks_refused_before_loading(cache, match):
    _refused([f"generator.cache={cache}"], match)


def test_draft_settings_refused_before_loading():
    on = ["loop.draft.enabled=true"]
    _refused(on + ["loop.draft.steps=60"], r"loop.draft.steps 60 is above the full render's 50 steps")
    _refused(on + ["loop.draft.height=250"], r"loop.draft.height 250 must be a multiple of 16 .* e.g. 240 or 256")
    _refused(on + ["loop.draft.cache={kind: faster}"], r"loop.draft.cache 'faster'")
    Refiner(load_config("wan2.1-1.3b", overrides=on + ["loop.draft.steps=50", "loop.draft.height=240"]))
    Refiner(load_config("wan2.1-1.3b", overrides=["loop.draft.steps=60"]))  # drafts off: not used, not checked


def test_a_batch_refuses_at_its_start(tmp_path):
    from phyt2v.batch import Batch
    from phyt2v.batch.sources import load_source

    (tmp_path / "p.txt").write_text("a ball falls\nwater pours\n")
    cfg = load_config("local-24gb", overrides=["generator.scheduler=ddim"])
    before = registry.LOADS["generator"]
    with pytest.raises(ConfigError, match="generator.scheduler does not apply to wan"):
        Batch(load_source(str(tmp_path / "p.txt")), cfg, out=tmp_path / "out").run()
    assert registry.LOADS["generator"] == before


def test_doctor_shows_the_refusal(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "phyt2v", "doctor", "--preset", "wan2.1-1.3b", "--vram", "24",
                        "--set", "generator.scheduler=dpm"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "generator.scheduler does not apply to wan pipelines" in p.stderr
    assert "Traceback" not in p.stderr


# ---------------------------------------------------------------- the same checks as a tiny model loads

def test_faster_cache_on_wan_refused_before_its_weights_load(monkeypatch, tmp_path):
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    kw = dict(num_frames=9, steps=2, height=16, width=16, device="cpu")
    real_load = DiffusersGenerator._load
    monkeypatch.setattr(DiffusersGenerator, "_load", lambda self, path: pytest.fail("weights were loaded"))
    with pytest.raises(ConfigError, match=r"generator.cache 'faster': .* wan pipelines do not run"):
        DiffusersGenerator("tiny-wan", cache={"kind": "faster"}, **kw)
    with pytest.raises(ConfigError, match=r"params.threshold 'x' is not float"):
        DiffusersGenerator("tiny-wan", cache={"kind": "first-block", "params": {"threshold": "x"}}, **kw)
    monkeypatch.setattr(DiffusersGenerator, "_load", real_load)
    # attention caching only (no unconditional-branch skip) is what Wan can take: it renders
    g = DiffusersGenerator("tiny-wan", cache={"kind": "faster", "params": {"is_guidance_distilled": True}}, **kw)
    assert g.generate("A ball falls", seed=0, out_path=tmp_path / "v.mp4").num_frames == 9
    assert g.knobs["cache"]["is_guidance_distilled"] is True


def test_draft_settings_checked_as_the_generator_loads():
    from phyt2v.generators.cogvideox import CogVideoXGenerator

    def build(*extra):
        registry.clear_cache()
        try:
            return registry.build("generator", load_config("smoke", overrides=["loop.draft.enabled=true", *extra]))
        finally:
            registry.clear_cache()

    # smoke: tiny CogVideoX, 2 steps, sides multiples of 16; the full step count here comes from the config,
    # so the pre-load check catches it too, but the loaded generator says it for family defaults as well
    with pytest.raises(ConfigError, match=r"loop.draft.steps 3 is above the full render's 2 steps"):
        build("loop.draft.steps=3")
    with pytest.raises(ConfigError, match=r"loop.draft.width 20 must be a multiple of 16"):
        build("loop.draft.width=20")
    assert isinstance(build("loop.draft.steps=1", "loop.draft.width=32"), CogVideoXGenerator)
    # the family's default step count (generator.steps unset) is known only once loaded
    with pytest.raises(ConfigError, match=r"loop.draft.steps 60 is above the full render's 50 steps"):
        build("generator.steps=null", "loop.draft.steps=60")


@pytest.mark.slow
def test_a_hub_model_outside_the_table_is_checked_on_its_fetched_configs(tmp_path):
    """A hub id neither cached nor in the table: its model_index.json and configs are fetched (kB) and the family
    check refuses the setting before any weight file is asked for. The hub is a loopback server serving a tiny
    Wan pipeline's files."""
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from phyt2v.tiny import tiny_model_dir

    folder, asked = tiny_model_dir("wan"), []

    class Hub(BaseHTTPRequestHandler):
        def _file(self):
            asked.append(self.path)
            rel = self.path.split("/resolve/main/", 1)[-1]
            f = folder / rel
            if "/resolve/main/" not in self.path or not f.is_file():
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.end_headers()
                return None
            data = f.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", "0" * 40)
            self.send_header("ETag", hashlib.sha256(data).hexdigest())
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return data

        def do_HEAD(self):
            self._file()

        def do_GET(self):
            data = self._file()
            if data is not None:
                self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
           "PHYT2V_CACHE": str(tmp_path / "phyt2v")}
    code = ("from phyt2v.generators.diffusers_gen import DiffusersGenerator\n"
            "DiffusersGenerator('someone/wan-video', scheduler='dpm', device='cpu')\n")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    finally:
        server.shutdown()
    assert p.returncode != 0 and "generator.scheduler does not apply to wan pipelines" in p.stderr, p.stderr[-2000:]
    files = {a.split("/resolve/main/", 1)[-1] for a in asked if "/resolve/" in a}
    assert files == {"model_index.json", "transformer/config.json", "vae/config.json"}  # no weight was asked for
