"""Config errors through the CLI: every one exits 2, whether the config check or the backend's load finds it, and
a run refused before any work leaves no run folder behind (as bad input already did)."""

import pytest
from test_cli import assert_clean_error, run


def run_folders(out):
    return [p for p in out.rglob("run.json")]


@pytest.mark.slow
@pytest.mark.parametrize("setting, needle", [
    ("generator.offload=model", "generator.offload 'model' needs a CUDA GPU"),  # was a BackendError: exit 1
    ("generator.compile=true", "generator.compile"),  # found while the generator loads
])
def test_refine_config_error_found_at_load_exits_2_and_leaves_no_run_folder(tmp_path, setting, needle):
    p = run("refine", "a ball falls", "--preset", "smoke", "--out", str(tmp_path), "--set", setting, timeout=300)
    assert_clean_error(p, needle, code=2)
    assert run_folders(tmp_path) == [] and [x.name for x in tmp_path.iterdir()] == []


@pytest.mark.slow
def test_batch_config_error_found_at_load_exits_2_and_leaves_no_run_folder(tmp_path):
    src = tmp_path / "p.txt"
    src.write_text("a ball falls\nwater pours into a glass\n")
    p = run("batch", str(src), "--preset", "smoke", "--out", str(tmp_path / "out"),
            "--set", "generator.offload=sequential", timeout=300)
    assert_clean_error(p, "generator.offload 'sequential' needs a CUDA GPU", code=2)
    assert run_folders(tmp_path / "out") == []
    assert not list((tmp_path / "out").glob("*/results.jsonl"))
