"""CLI bad input: one clear line, non-zero exit, no traceback."""

import os
import subprocess
import sys

import pytest


def run(*args, env=None, timeout=120):
    e = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    e.pop("PHYT2V_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "phyt2v", *args], capture_output=True, text=True,
                          timeout=timeout, env=e)


def assert_clean_error(p, *needles, code=None):
    assert p.returncode != 0, p.stdout + p.stderr
    if code is not None:
        assert p.returncode == code
    assert "Traceback" not in p.stderr
    text = " ".join(p.stderr.split())
    for n in needles:
        assert n in text, text


def test_help_is_fast_and_imports_no_heavy_library():
    code = ("import sys, phyt2v.cli; heavy = [m for m in ('torch','diffusers','transformers','openai','xllamacpp') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    p = run("--help")
    assert p.returncode == 0 and "refine" in p.stdout and "enhance" in p.stdout


def test_empty_prompt(tmp_path):
    assert_clean_error(run("refine", "   ", "--preset", "smoke", "--out", str(tmp_path)), "prompt is empty",
                       code=2)
    assert not any(tmp_path.iterdir())


def test_unknown_preset_suggests():
    assert_clean_error(run("refine", "a ball", "--preset", "cogvideox5b"), "unknown preset 'cogvideox5b'",
                       "Did you mean cogvideox-5b")


def test_unknown_backend_suggests(tmp_path):
    p = run("refine", "a ball", "--preset", "smoke", "--set", "scorer.backend=vlm-judg", "--out", str(tmp_path))
    assert_clean_error(p, "unknown scorer backend 'vlm-judg'", "Did you mean vlm-judge")


def test_invalid_value_names_key():
    assert_clean_error(run("refine", "a ball", "--preset", "smoke", "--set", "generator.steps=-3"),
                       "'generator.steps'")
    assert_clean_error(run("refine", "a ball", "--preset", "smoke", "--set", "loop.threshold=high"),
                       "'loop.threshold'")


def test_unreadable_config(tmp_path):
    assert_clean_error(run("refine", "a ball", "--config", str(tmp_path / "nope.yaml")), "config file not found")


def test_no_gpu_without_preset_names_smoke_and_enhance():
    p = run("refine", "a ball falls")
    assert_clean_error(p, "no CUDA GPU", "--preset smoke", "enhance")
    assert len(p.stderr.strip().splitlines()) <= 3  # one message (wrapped by the terminal at most)


@pytest.mark.slow
def test_presets_backends_doctor():
    assert "smoke" in run("presets").stdout
    b = run("backends").stdout
    assert "cogvideox" in b and "vlm-judge" in b and "embedded" in b
    d = run("doctor", env={"OPENAI_API_KEY": "sk-test-DOCTOR-SECRET"})
    assert d.returncode == 0 and "OPENAI_API_KEY" in d.stdout and "set" in d.stdout
    assert "DOCTOR-SECRET" not in d.stdout + d.stderr
    assert "no CUDA" in d.stdout and "smoke" in d.stdout


def test_usage_errors_are_clicks_own_short_messages():
    p = run("refine")
    assert p.returncode == 2 and "Missing argument" in p.stderr and "Traceback" not in p.stderr
    p = run("refine", "a ball", "--rounds", "0")
    assert p.returncode == 2 and "--rounds" in p.stderr
    p = run("no-such-command")
    assert p.returncode == 2 and "No such command" in p.stderr


def test_every_command_is_registered():
    p = run("--help")
    for cmd in ("refine", "enhance", "score", "batch", "metrics", "export", "report", "presets", "backends", "doctor"):
        assert cmd in p.stdout, cmd


def test_batch_bad_input(tmp_path):
    assert_clean_error(run("batch", "videopy", "--preset", "smoke", "--out", str(tmp_path)),
                       "did you mean 'videophy'", code=2)
    src = tmp_path / "p.txt"
    src.write_text("a ball falls\n")
    assert_clean_error(run("batch", str(src), "--preset", "smoke", "--shard", "2/2", "--out", str(tmp_path)),
                       "--shard '2/2'", "0 <= i < n", code=2)
    bad = tmp_path / "p.csv"
    bad.write_text("prompt,category\nok,a\n,b\n")
    assert_clean_error(run("batch", str(bad), "--preset", "smoke", "--out", str(tmp_path)),
                       "p.csv:3", "--skip-bad", code=2)
    assert not any(tmp_path.glob("*/results.jsonl"))


def test_export_bad_input(tmp_path):
    assert_clean_error(run("export", str(tmp_path), "--format", "videophy-eval"), "not a batch directory", code=2)


def test_out_that_cannot_be_a_folder_is_exit_2(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (("refine", "a ball falls", "--preset", "smoke", "--out", str(afile)),
                 ("refine", "a ball falls", "--preset", "smoke", "--out", str(afile / "sub")),
                 ("batch", str(afile), "--preset", "smoke", "--out", str(afile))):
        assert_clean_error(run(*args), f"{afile} is a file, not a folder", code=2)
    p = run("score", str(afile), "--prompt", "x", "--out", str(tmp_path))
    assert_clean_error(p, "use a .csv or .jsonl file name", code=2)


def test_out_in_a_place_that_cannot_be_written_is_exit_2(tmp_path):
    import pathlib

    target = pathlib.Path("/sys/phyt2v-test-out")  # sysfs refuses new folders, even to root
    try:
        target.mkdir()
    except OSError:
        pass
    else:
        target.rmdir()
        import pytest

        pytest.skip("this system lets /sys be written")
    p = run("refine", "a ball falls", "--preset", "smoke", "--out", str(target / "runs"))
    assert_clean_error(p, "cannot create the folder", str(target), code=2)
    p = run("score", str(tmp_path / "v.mp4"), "--prompt", "x", "--out", str(target / "s.csv"))
    assert_clean_error(p, "cannot create the folder", code=2)


def test_metrics_on_a_video_is_one_line_exit_2(shared_dir):
    video = next((shared_dir / "videos").glob("*.mp4"))
    p = run("metrics", "videophy", str(video))
    assert_clean_error(p, f"{video.name}: not a text file", code=2)
    assert len(p.stderr.strip().splitlines()) <= 3


def test_score_offline_fails_at_once_naming_the_download(tmp_path):
    import time

    t0 = time.monotonic()
    p = run("score", str(tmp_path / "v.mp4"), "--prompt", "x", "--set", "scorer.model=someone/absent-model",
            env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert time.monotonic() - t0 < 15  # the process start included; the hub's retries took ~25 s
    assert_clean_error(p, "'someone/absent-model'", "HF_HUB_OFFLINE", "hf download someone/absent-model", code=1)


@pytest.mark.slow
def test_each_warning_is_printed_once(tmp_path):
    # The cheapest real run that warns: the smoke preset with a generator that fails to load leaves a
    # failed run folder; --fresh moves it aside with a warning (the loop both logs it and emits an event).
    args = ("refine", "A ball falls on the floor and bounces twice.", "--preset", "smoke", "--out", str(tmp_path),
            "--set", f"generator.model={tmp_path / 'absent'}")
    assert_clean_error(run(*args, timeout=300), "generator model path not found", code=1)
    p = run(*args, "--fresh", timeout=300)
    text = " ".join(p.stderr.split())
    assert text.count("--fresh: the earlier run was moved") == 1, p.stderr
    assert "generator model path not found" in text
