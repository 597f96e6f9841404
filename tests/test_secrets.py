"""The API key never reaches disk, even when an endpoint echoes it inside its replies: a real loopback
HTTP server answers with the key in a valid reply and in an unparseable one (kept as error.raw)."""

import json

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer
from llm_servers import FaultyServer, ok

from phyt2v import Refiner, load_config
from phyt2v.errors import ParseError
from phyt2v.store.files import append_jsonl, atomic_write_text
from phyt2v.store.redact import scrub

KEY = "sk-echoed-SECRET-4b1d9e"
PROMPT = "a rubber ball is dropped onto a wooden floor"


def all_bytes(folder):
    return {f: f.read_bytes() for f in folder.rglob("*") if f.is_file()}


@pytest.mark.parametrize("env_name", ["OPENAI_API_KEY", "MY_LLM_KEY"])
def test_key_echoed_by_the_endpoint_is_scrubbed_from_every_file(tmp_path, monkeypatch, env_name):
    monkeypatch.setenv(env_name, KEY)
    rules = {"objects": ["ball", f"key {KEY}"], "rules": ["gravity"], "expected_outcome": f"echo {KEY}"}
    with FaultyServer([ok(json.dumps(rules)), ok(f"not json, your key is {KEY}")]) as srv:
        cfg = load_config(llm={"backend": "openai", "base_url": srv.base_url, "model": "test",
                               "api_key_env": env_name, "max_retries": 0},
                          loop={"max_rounds": 2, "parse_retries": 0}, out=str(tmp_path))
        ref = Refiner(cfg, generator=FakeGenerator(), captioner=FakeCaptioner(), scorer=FakeScorer([(0.2, 0.2)]))
        with pytest.raises(ParseError):
            ref.refine(PROMPT)
        assert srv.count >= 2 and srv.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    files = all_bytes(tmp_path)
    rec = json.loads(next(tmp_path.glob("*/run.json")).read_text())
    assert rec["error"]["raw"] == "not json, your key is ***" and "***" in rec["rules"]["expected_outcome"]
    assert any(b"***" in data for f, data in files.items() if f.name == "calls.jsonl")
    leaked = [f.name for f, data in files.items() if KEY.encode() in data]
    assert leaked == []


def test_write_helpers_scrub_raw_and_json_escaped_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", 'k"ey\\with-escapes')
    append_jsonl(tmp_path / "a.jsonl", {"echo": 'k"ey\\with-escapes'})
    atomic_write_text(tmp_path / "b.txt", 'said k"ey\\with-escapes')
    assert json.loads((tmp_path / "a.jsonl").read_text()) == {"echo": "***"}
    assert (tmp_path / "b.txt").read_text() == "said ***"
    monkeypatch.setenv("OPENAI_API_KEY", "abc")  # too short to scrub safely: ordinary words stay
    assert scrub("abc def") == "abc def"
