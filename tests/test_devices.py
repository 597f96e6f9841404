"""Model location: a hub id that is neither cached nor downloadable fails at once, naming the fix."""

import time

import pytest

from phyt2v.errors import BackendError
from phyt2v.runtime import hub


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path / "hub"


def _fails_fast(**kw):
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        hub.resolve_model("someone/not-cached", tiny_kind="vlm", what="VLM model", example="a/b", **kw)
    assert time.monotonic() - t0 < 3.0
    return str(info.value)


def test_offline_without_cache(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = _fails_fast(key="captioner.model")
    assert "'someone/not-cached'" in msg and "HF_HUB_OFFLINE" in msg and str(empty_cache) in msg
    assert "hf download someone/not-cached" in msg and "--set captioner.model=PATH" in msg


def test_unreachable_hub_without_cache(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    msg = _fails_fast()
    assert "cannot be reached (127.0.0.1:9" in msg and "hf download someone/not-cached" in msg


def test_cached_snapshot_passes(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = empty_cache / "models--someone--not-cached" / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert hub.resolve_model("someone/not-cached", tiny_kind="vlm", what="VLM", example="a/b") == \
        "someone/not-cached"
    (snap / "config.json").unlink()  # an empty snapshot folder is not a cached model
    with pytest.raises(BackendError, match="not in the local Hugging Face cache"):
        hub.check_hub_model("someone/not-cached", "VLM")


def test_dtype_keyword_is_honoured_by_the_installed_libraries(tmp_path):
    """phyt2v passes ``dtype=`` (its floors, transformers >= 5.25 and diffusers >= 0.42.1, both take it; the
    branch that passed ``torch_dtype`` to older releases is gone): the loaded weights have that dtype, and no
    warning asks for the other keyword."""
    import warnings

    import torch
    from diffusers import DiffusionPipeline
    from transformers import T5Config, T5EncoderModel

    from phyt2v.runtime.devices import dtype_kwargs
    from phyt2v.tiny import tiny_model_dir

    T5EncoderModel(T5Config(d_model=8, d_ff=8, d_kv=4, num_layers=1, num_heads=2, vocab_size=32)).save_pretrained(
        tmp_path / "t5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = T5EncoderModel.from_pretrained(tmp_path / "t5", **dtype_kwargs(torch.bfloat16))
        pipe = DiffusionPipeline.from_pretrained(str(tiny_model_dir("wan")), **dtype_kwargs(torch.bfloat16))
    assert model.dtype == torch.bfloat16 and pipe.transformer.dtype == torch.bfloat16
    assert not [w for w in caught if "dtype" in str(w.message)]
