"""prompts/, configs/ and the report templates must ship inside a non-editable wheel, and be found from it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_prompts_and_configs(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("phyt2v-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in sorted((ROOT / "prompts").glob("*.md")) + sorted((ROOT / "configs").glob("*.yaml")):
        assert f"phyt2v/_data/{p.parent.name}/{p.name}" in names
    templates = sorted((ROOT / "phyt2v" / "views" / "templates").iterdir())
    assert {p.suffix for p in templates} >= {".j2", ".css", ".js"}
    for p in templates:
        assert f"phyt2v/views/templates/{p.name}" in names
    # installed (unpacked) without the source tree beside it, the data folders are found
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from phyt2v.resources import prompts_dir, configs_dir; from phyt2v.config import preset_names; "
            "print(prompts_dir()); print(configs_dir()); print(preset_names()); "
            "from phyt2v.views import report; print(report.__file__); print(report.render('page.html.j2', title='t'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout
    assert str(site / "phyt2v" / "_data" / "prompts") in out and "smoke" in out
    assert str(site / "phyt2v" / "views" / "report.py") in out
    assert "table.sortable th{cursor:pointer}" in out and "document.body.dataset.ready" in out  # CSS, JS inlined
