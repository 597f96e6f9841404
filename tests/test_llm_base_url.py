"""An explicit llm.base_url selects the openai backend (over a preset's `backend: embedded`) unless
the same command names a backend; through the real CLI against a loopback server. And a reply cut
at max_tokens is never printed as an enhanced prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from doubles import RULES, refinement
from llm_servers import FaultyServer, cut, ok

from phyt2v.config import load_config

PROMPT = "a rubber ball is dropped onto a wooden floor"
LONG = " ".join(["the ball falls and bounces lower each time on the hard wooden floor"] * 28)


def enhance_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, "-m", "phyt2v", "enhance", PROMPT, "--preset", "smoke", *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_set_base_url_with_the_smoke_preset_uses_the_endpoint():
    with FaultyServer([ok(json.dumps(RULES)), ok(refinement("the ball bounces lower each time"))]) as srv:
        p = enhance_cli("--set", f"llm.base_url={srv.base_url}", "--json")
        assert p.returncode == 0, p.stderr
        assert srv.count == 2 and all(r["path"] == "/v1/chat/completions" for r in srv.requests)
    assert json.loads(p.stdout)["enhanced"] == "the ball bounces lower each time"
    assert "tiny, weak" not in p.stderr  # the embedded model was not loaded


@pytest.mark.slow
def test_an_enhance_reply_cut_at_max_tokens_is_not_printed():
    half = json.dumps({"principle": "energy is lost at each bounce", "prompt": LONG})[:-40]
    with FaultyServer([ok(json.dumps(RULES)), cut(half)]) as srv:
        p = enhance_cli("--set", "llm.backend=openai", "--set", f"llm.base_url={srv.base_url}")
        assert srv.count == 3  # rules, the cut rewrite, one shorter re-ask
    assert p.returncode == 1
    assert "llm.max_tokens = 640" in p.stderr and "--set llm.max_tokens=1280" in p.stderr
    assert "Traceback" not in p.stderr and LONG[:60] not in p.stdout


@pytest.mark.parametrize("sets,backend", [
    (["llm.base_url=http://127.0.0.1:9/v1"], "openai"),
    (["llm.base_url=http://127.0.0.1:9/v1", "llm.backend=embedded"], "embedded"),
    (["llm.backend=transformers", "llm.base_url=http://127.0.0.1:9/v1"], "transformers"),
    (["llm.temperature=0.5"], "embedded"),
    (["llm.base_url=null"], "embedded"),
])
def test_base_url_rule_in_load_config(sets, backend):
    assert load_config("smoke", overrides=sets).llm.backend == backend


def test_base_url_rule_for_python_callers():
    assert load_config("smoke", llm={"base_url": "http://h/v1"}).llm.backend == "openai"
    assert load_config("smoke", llm={"base_url": "http://h/v1", "backend": "embedded"}).llm.backend == "embedded"
