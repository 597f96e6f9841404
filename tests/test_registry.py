"""Backends found by name: built-ins and plugins read into one table through one loader, found through real
installed-package metadata (a ``.dist-info`` folder on ``sys.path``, as pip leaves it)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from phyt2v import registry
from phyt2v.errors import BackendError, BackendNotFound


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A real installed distribution 'phyt2v-demo-plugin' with a module and entry points in ``phyt2v.backends``."""
    (tmp_path / "demo_plugin.py").write_text(textwrap.dedent("""
        class Judge:
            backend = "demo-judge"
            model_id = "demo"

            @classmethod
            def from_config(cls, config):
                return cls()

        class FakeOpenAI:
            pass
    """))
    info = tmp_path / "phyt2v_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: phyt2v-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [phyt2v.backends]
        scorer:demo-judge = demo_plugin:Judge
        llm:openai = demo_plugin:FakeOpenAI
        scorer:broken = demo_plugin:Missing
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._WARNED.clear()
    return tmp_path


def test_builtins_and_plugins_share_one_table_and_one_loader(plugin_dist):
    scorers = registry.available("scorer")
    assert scorers["videocon"].source == "built-in"
    assert scorers["demo-judge"].source == "plugin (phyt2v-demo-plugin)"
    assert scorers["demo-judge"].target == "demo_plugin:Judge"
    assert registry.resolve("scorer", "demo-judge").__name__ == "Judge"
    assert registry.resolve("scorer", "videocon").__name__ == "VideoConScorer"


def test_a_plugin_named_like_a_builtin_is_not_used_and_the_warning_names_both(plugin_dist, caplog):
    with caplog.at_level(logging.WARNING, logger="phyt2v"):
        entry = registry.available("llm")["openai"]
    assert entry.source == "built-in" and entry.target == "phyt2v.llms.openai_llm:OpenAILLM"
    assert registry.resolve("llm", "openai").__name__ == "OpenAILLM"
    [msg] = [r.getMessage() for r in caplog.records if "llm:openai" in r.getMessage()]
    assert "phyt2v-demo-plugin" in msg and "demo_plugin:FakeOpenAI" in msg
    assert "phyt2v.llms.openai_llm:OpenAILLM" in msg
    with caplog.at_level(logging.WARNING, logger="phyt2v"):
        caplog.clear()
        registry.available("llm")
    assert not caplog.records  # said once per process


def test_a_broken_plugin_fails_in_one_line_naming_its_source(plugin_dist):
    with pytest.raises(BackendError, match=r"plugin \(phyt2v-demo-plugin\): demo_plugin:Missing"):
        registry.resolve("scorer", "broken")


def test_unknown_backend_suggests_names():
    with pytest.raises(BackendNotFound, match="Did you mean videocon"):
        registry.check("scorer", "videocom")


def test_backends_command_lists_plugins_with_their_distribution(plugin_dist):
    env_path = f"{plugin_dist}"
    out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                          "from phyt2v.cli import main; sys.argv = ['phyt2v', 'backends']; main()", env_path],
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin",
                                                                           "PYTHONPATH": ":".join(sys.path)})
    assert "demo-judge" in out.stdout and "phyt2v-demo-plugin" in out.stdout
    assert "the plugin backend 'llm:openai' of phyt2v-demo-plugin" in out.stderr
