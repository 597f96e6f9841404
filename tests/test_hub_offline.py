"""A hub id that is not in the local cache, while the hub cannot be reached, fails at once with the `hf download`
hint for the transformers LLM and for a hub LoRA (as for the generator and the VLM): no minute of hub retries."""

import time

import pytest

from phyt2v.errors import BackendError


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture
def unreachable(tmp_path, monkeypatch):
    """Not offline, but the hub's address refuses connections (a closed loopback port): nothing else is asked."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def test_transformers_llm_offline_fails_at_once_with_the_download_hint(offline):
    pytest.importorskip("torch")  # imported before the timer: the device is chosen before the hub is asked
    from phyt2v.llms.transformers_llm import TransformersLLM

    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"LLM 'someone/absent-llm'.*HF_HUB_OFFLINE.*"
                                           r"hf download someone/absent-llm.*--set llm.model=PATH"):
        TransformersLLM(model="someone/absent-llm")
    assert time.monotonic() - t0 < 5


def test_transformers_llm_hub_unreachable_fails_at_once(unreachable):
    pytest.importorskip("torch")
    from phyt2v.llms.transformers_llm import TransformersLLM

    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"the hub cannot be reached .*hf download someone/absent-llm"):
        TransformersLLM(model="someone/absent-llm")
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("env", ["offline", "unreachable"])
def test_hub_lora_not_cached_fails_at_once_with_the_download_hint(env, request):
    from phyt2v.generators.lora import LoraSpec, resolve_file

    request.getfixturevalue(env)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"generator.lora hub repo 'someone/absent-lora'.*"
                                           r"hf download someone/absent-lora"):
        resolve_file(LoraSpec(path="someone/absent-lora", weight_name="lora.safetensors"))
    with pytest.raises(BackendError, match=r"hf download someone/absent-lora"):
        resolve_file(LoraSpec(path="someone/absent-lora"))  # no weight_name: the repo's files are listed first
    assert time.monotonic() - t0 < 5
