"""A served captioner's place in the rest of the stack: ``llm.backend: auto`` takes its endpoint and model (answered
for real by SmolLM2 through xllamacpp's OpenAI-compatible server), the memory plan shows every served role remote,
quantization of a served role is refused, its endpoint settings are runtime (not hashed), and ``phyt2v doctor``
probes each configured endpoint in one line within a few seconds."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from llm_servers import free_port, smollm_server
from vlm_servers import VisionServer

from phyt2v import registry
from phyt2v.config import load_config
from phyt2v.errors import ConfigError
from phyt2v.llms.openai_llm import OpenAILLM
from phyt2v.runtime import endpoints, quant
from phyt2v.runtime.llm_choice import choose_llm
from phyt2v.runtime.memplan import make_plan

GiB = 2**30
SECRET = "sk-test-DOCTOR-ENDPOINT-SECRET-90ab"


def served(url="http://127.0.0.1:9/v1", *extra):
    return load_config("smoke", overrides=["captioner.backend=openai", f"captioner.base_url={url}",
                                           "captioner.model=vision-test", "llm.backend=auto", *extra])


@pytest.fixture(autouse=True)
def _fresh():
    registry.clear_cache()
    yield
    registry.clear_cache()


def test_auto_llm_uses_the_served_captioners_endpoint_only_when_no_llm_is_configured():
    backend, model, why = choose_llm(served(), cuda=False, env={})
    assert (backend, model) == ("openai", "vision-test") and "served captioner's endpoint (http://127.0.0.1:9/v1)" in why
    assert choose_llm(served(), cuda=True, env={"OPENAI_API_KEY": "k"})[:2] == ("openai", "vision-test")
    assert choose_llm(served("u", "llm.base_url=http://other/v1"), cuda=False, env={})[2].startswith("llm.base_url")
    assert choose_llm(served("u", "llm.model=x.gguf"), cuda=False, env={})[0] == "embedded"
    assert choose_llm(served("u", "llm.backend=embedded"), cuda=False, env={})[0] == "embedded"
    assert choose_llm(load_config("smoke", overrides=["llm.backend=auto"]), cuda=False, env={})[0] == "embedded"


@pytest.mark.slow
def test_the_llm_steps_go_to_the_captioners_endpoint_and_a_real_model_answers():
    with smollm_server() as upstream, VisionServer(upstream=upstream) as srv:
        llm = registry.build("llm", served(srv.base_url))
        assert isinstance(llm, OpenAILLM) and llm.base_url == srv.base_url and llm.model_id == "vision-test"
        reply = llm.complete([{"role": "user", "content": "Name one object that falls."}], max_tokens=8)
    assert isinstance(reply, str) and reply.strip()  # SmolLM2's words: structure only, never wording
    assert len(srv.requests) == 1 and srv.requests[0]["media"] is None
    assert srv.requests[0]["text"] == "Name one object that falls."


def test_the_memory_plan_shows_every_served_role_remote():
    plan = make_plan(served(), 24 * GiB, cuda=True, env={})
    roles = plan.roles
    for role in ("llm", "captioner", "scorer"):
        assert roles[role].source == "remote" and roles[role].bytes == 0 and roles[role].work_bytes == 0, role
    assert roles["scorer"].model == "vision-test" and roles["scorer"].shared_with is None
    assert plan.llm["backend"] == "openai" and plan.placement == "resident"
    local = make_plan(load_config("smoke"), 24 * GiB, cuda=True, env={})
    assert local.roles["captioner"].source == "tiny" and local.roles["scorer"].shared_with == "captioner"


@pytest.mark.parametrize("knob, backend", [("captioner.quantization=nf4", "captioner backend 'openai'"),
                                           ("scorer.quantization=int8", "scorer backend 'vlm-judge'")])
def test_quantizing_a_served_role_is_refused_before_anything_loads(knob, backend):
    cfg = served("http://127.0.0.1:9/v1", knob)
    with pytest.raises(ConfigError, match=rf"{knob} does not apply to the {backend} \(the model runs on the "
                                          r"endpoint's server; quantize it there\)"):
        quant.check_before_load(cfg, make_plan(cfg, 24 * GiB, cuda=True, env={}))


def test_where_a_served_role_runs_is_runtime_what_it_runs_is_hashed():
    base = served()
    for knob in ["captioner.base_url=http://elsewhere:8000/v1", "captioner.api_key_env=X", "captioner.timeout_s=5",
                 "captioner.max_retries=0", "scorer.base_url=http://judge/v1", "scorer.api_key_env=Y",
                 "scorer.timeout_s=9", "scorer.max_retries=1"]:
        assert served("http://127.0.0.1:9/v1", knob).hash() == base.hash(), knob
    assert served("http://127.0.0.1:9/v1", "captioner.model=other").hash() != base.hash()
    assert served("http://127.0.0.1:9/v1", "captioner.options.video=true").hash() != base.hash()
    assert base.hash() != load_config("smoke", overrides=["llm.backend=auto"]).hash()  # backend openai vs vlm


def test_the_endpoints_a_config_serves_from():
    eps = endpoints.configured(served("http://cap/v1", "scorer.base_url=http://judge/v1", "scorer.model=j",
                                      "scorer.api_key_env=JUDGE_KEY"), env={})
    assert [(e.role, e.base_url, e.model, e.key_env) for e in eps] == [
        ("llm", "http://cap/v1", "vision-test", "OPENAI_API_KEY"), ("captioner", "http://cap/v1", "vision-test",
                                                                     "OPENAI_API_KEY"),
        ("scorer", "http://judge/v1", "j", "JUDGE_KEY")]
    assert endpoints.configured(load_config("smoke"), env={}) == []


def test_a_probe_of_a_server_that_never_answers_ends_at_its_deadline():
    with socket.socket() as s:  # accepts connections (the kernel's backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        ep = endpoints.Endpoint("captioner", f"http://127.0.0.1:{s.getsockname()[1]}/v1", "m", "NO_SUCH_KEY_VAR")
        t0 = time.monotonic()
        check = endpoints.probe(ep, seconds=1.0, env={})
        took = time.monotonic() - t0
    assert not check.ok and check.line.startswith("DOWN: no answer within 1s") and took < 10  # never answers: no deadline hangs


def doctor(*args, env=None):
    e = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    for k in ("PHYT2V_DEBUG", "OPENAI_BASE_URL"):
        e.pop(k, None)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "phyt2v", "doctor", *args], capture_output=True, text=True, timeout=120,
                       env=e)
    return p, time.monotonic() - t0


@pytest.mark.slow
def test_doctor_checks_each_configured_endpoint_in_one_line_within_seconds():
    down = f"http://127.0.0.1:{free_port()}/v1"
    with VisionServer() as up, VisionServer(models=("other-model",)) as wrong:
        args = ["--preset", "smoke", "--set", "captioner.backend=openai", "--set", f"captioner.base_url={up.base_url}",
                "--set", "captioner.model=vision-test", "--set", f"scorer.base_url={wrong.base_url}",
                "--set", "scorer.model=judge-model", "--set", "llm.backend=openai", "--set", f"llm.base_url={down}",
                "--set", "llm.model=m"]
        p, took = doctor(*args, "--json", env={"OPENAI_API_KEY": SECRET})
        assert p.returncode == 0, p.stderr[-2000:]
        lines = {e["role"]: e for e in json.loads(p.stdout)["endpoints"]}
        shown, _ = doctor(*args, env={"OPENAI_API_KEY": SECRET})
    assert lines["captioner"]["ok"] and lines["captioner"]["line"] == \
        "reachable; model 'vision-test' listed; key $OPENAI_API_KEY set"
    assert not lines["scorer"]["ok"] and "model 'judge-model' NOT listed (served: other-model)" in lines["scorer"]["line"]
    assert not lines["llm"]["ok"] and lines["llm"]["line"].startswith("DOWN: cannot connect")
    assert all(e["seconds"] < endpoints.PROBE_S + 0.5 for e in lines.values())
    assert took < 20  # the CLI's own start included; the probes themselves run at once, within PROBE_S
    out = shown.stdout
    assert shown.returncode == 0
    assert f"  captioner {up.base_url}: ok: reachable; model 'vision-test' listed; key $OPENAI_API_KEY set\n" in out
    assert f"  scorer {wrong.base_url}: FAILED: reachable; model 'judge-model' NOT listed" in out
    assert f"  llm {down}: FAILED: DOWN: cannot connect" in out
    assert SECRET not in p.stdout + p.stderr + out + shown.stderr


@pytest.mark.slow
def test_doctor_without_a_config_checks_openai_base_url():
    with VisionServer() as up:
        p, _ = doctor(env={"OPENAI_BASE_URL": up.base_url})
    assert p.returncode == 0
    assert f"  OPENAI_BASE_URL {up.base_url}: ok: reachable; models: vision-test; key $OPENAI_API_KEY" in p.stdout
    p, _ = doctor()
    assert p.returncode == 0 and "GET {base_url}/models" not in p.stdout  # nothing to probe: no lines
