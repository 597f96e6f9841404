"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp / xllamacpp server.

The key comes only from the environment variable named by ``api_key_env``; it is never
stored on the object, written anywhere, or shown in an error. Retries are bounded and ours
(the client's own retries are off) so the number of requests is exact.

Deadlines: httpx's timeout is per socket read, so a server that trickles one byte a second never
trips it. Each request therefore runs in a daemon worker thread that the caller waits for at most
``timeout_s``; at the deadline the request is abandoned: the client (and its sockets) is closed, so
the worker ends at its next read, and a fresh client serves the next attempt. One ``complete()``
call, retries and backoff waits included, never takes longer than ``budget_s``: ``timeout_s`` per
attempt plus the doubling backoff waits plus one second for overheads (30 s x 4 + 1 + 2 + 4 + 1 s =
128 s with the defaults); a server's Retry-After cannot stretch it (the last attempt gets what is left).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LLMError
from ..roles import Reply
from ..runtime.deadline import error_detail, retry_delay
from ..store import redact
from ._common import Abandoned, call_with_deadline, check_messages, json_schema_format, one_line

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phyt2v")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"  # used only when neither llm.model nor llm.base_url is set
LOCAL_DUMMY_KEY = "not-needed"  # local servers accept any key
BUDGET_GRACE_S = 1.0  # thread start, connect, parsing: so the last attempt still gets its full timeout_s
NOT_JSON_HINT = ("check llm.base_url: it must be the OpenAI-compatible API (usually ending in /v1), "
                 "not a proxy's or web server's page")


def _secs(seconds: float) -> str:
    return f"{max(round(seconds, 1), 0.1):g}s"


class OpenAILLM:
    """Chat completions over HTTP. ``options`` are extra request-body fields (e.g. top_p)."""

    backend = "openai"
    quantization_note = "the model runs on the endpoint's server; quantize it there"  # llm.quantization refused

    def __init__(self, *, model: str | None = None, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", temperature: float = 0.2, seed: int | None = 0,
                 max_tokens: int = 1024, timeout_s: float = 30.0, max_retries: int = 3,
                 backoff_s: float = 1.0, options: dict[str, Any] | None = None):
        import openai  # noqa: F401  (a missing package fails here, at load, not at the first call)

        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ConfigError(f"llm: need max_retries >= 0, timeout_s > 0, backoff_s >= 0 "
                              f"(got {max_retries}, {timeout_s}, {backoff_s})")
        self._key_env = api_key_env
        redact.watch(api_key_env)  # its value is scrubbed from every message and write
        key = os.environ.get(api_key_env) or None
        if key is None and not base_url:
            raise ConfigError(f"no API key: set the environment variable {api_key_env} "
                              "(llm.api_key_env names it), or set llm.base_url to a local "
                              "OpenAI-compatible server (vLLM, Ollama, llama.cpp).")
        self.timeout_s = timeout_s
        self._base_url_arg = base_url or None
        self._client = self._new_client()
        self.base_url = str(self._client.base_url).rstrip("/")
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.options = dict(options or {})
        self._schema_mode = "strict"  # strict -> loose -> off, as the endpoint rejects them
        self._max_tokens_key = "max_tokens"
        self._send_temperature = True
        self.requests = 0  # HTTP requests sent (for run records and tests)
        self.abandoned = 0  # requests given up at their deadline
        self.last_finish_reason: str | None = None
        self.model_id = model or (self._served_model() if base_url else DEFAULT_OPENAI_MODEL)

    @classmethod
    def from_config(cls, config: "Config") -> "OpenAILLM":
        from ..runtime.quant import check_applies

        c = config.llm
        check_applies("llm", cls.backend, cls, c.quantization)
        return cls(model=c.model, base_url=c.base_url, api_key_env=c.api_key_env,
                   temperature=c.temperature, seed=c.seed, max_tokens=c.max_tokens,
                   timeout_s=c.timeout_s, max_retries=c.max_retries, backoff_s=c.backoff_s,
                   options=c.options)

    @property
    def supports_schema(self) -> bool:
        return self._schema_mode != "off"

    def __repr__(self) -> str:
        return f"OpenAILLM(model_id={self.model_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _new_client(self) -> Any:
        import openai

        key = os.environ.get(self._key_env) or LOCAL_DUMMY_KEY
        return openai.OpenAI(api_key=key, base_url=self._base_url_arg, timeout=self.timeout_s, max_retries=0)

    def _request(self, fn: Any, seconds: float) -> Any:
        """``fn(client)`` with a deadline of ``seconds``; at the deadline the request is abandoned: its
        client is closed (the worker thread then fails at its next read) and replaced by a fresh one."""
        client = self._client
        try:
            return call_with_deadline(lambda: fn(client), seconds)
        except Abandoned:
            self.abandoned += 1
            self._client = self._new_client()
            try:
                client.close()
            except Exception as e:  # closing a half-used pool must never hide the timeout
                log.debug("closing the abandoned LLM client failed: %s", type(e).__name__)
            raise

    # ------------------------------------------------------------------ calls

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> Reply:
        """Send one chat request (with bounded retries) and return the reply text ("" if empty) as a
        ``Reply`` whose ``finish_reason`` says whether it was cut at max_tokens ("length")."""
        import openai

        msgs = check_messages(messages)
        end = time.monotonic() + self.budget_s  # the whole call, retries and waits included
        attempts, fallbacks = 0, 0
        while True:
            body = self._body(msgs, schema, max_tokens or self.max_tokens)
            attempts += 1
            self.requests += 1
            wait = min(self.timeout_s, end - time.monotonic())
            try:
                http = self._request(lambda c: c.chat.completions.with_raw_response.create(**body)
                                     .http_response, wait)
            except Abandoned:
                self._wait_or_raise(attempts, end, f"timeout after {_secs(wait)}")
                continue
            except openai.APIStatusError as e:
                code = e.status_code
                if code in (400, 422) and fallbacks < 4 and self._fallback(e, body):
                    attempts -= 1  # a changed request, not a retry
                    fallbacks += 1
                    continue
                if code in (408, 429) or code >= 500:
                    kind = f"HTTP {code}" + (" (rate limited)" if code == 429 else "")
                    self._wait_or_raise(attempts, end, kind, e.response.headers.get("retry-after"))
                    continue
                raise LLMError(self._fail_line(f"HTTP {code}: {error_detail(e)}", attempts,
                                               self._hint(code))) from None
            except openai.APITimeoutError:
                self._wait_or_raise(attempts, end, f"timeout after {_secs(wait)}")
                continue
            except openai.APIConnectionError as e:
                cause = type(e.__cause__).__name__ if e.__cause__ else "no response"
                self._wait_or_raise(attempts, end, f"connection error ({cause})")
                continue
            except openai.OpenAIError as e:
                raise LLMError(self._fail_line(f"bad response ({type(e).__name__}: {error_detail(e)})",
                                               attempts, "check that the endpoint is OpenAI-compatible"
                                               )) from None
            try:
                data = json.loads(http.text)
            except ValueError:  # a proxy's HTML error page, a captive portal, ...: transient
                start = redact.scrub(one_line(http.text, 80)) or "(empty)"
                self._wait_or_raise(attempts, end, f"HTTP {http.status_code} reply is not an OpenAI-compatible "
                                                   f"JSON response (body starts: {start!r})", hint=NOT_JSON_HINT)
                continue
            return self._reply(data, attempts)

    @property
    def budget_s(self) -> float:
        """The most one ``complete()`` call may take: every attempt's deadline plus the backoff waits."""
        waits = sum(self.backoff_s * 2 ** i for i in range(self.max_retries))
        return self.timeout_s * (self.max_retries + 1) + waits + BUDGET_GRACE_S

    def _body(self, msgs: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> dict:
        body: dict[str, Any] = {"model": self.model_id, "messages": msgs,
                                self._max_tokens_key: max_tokens}
        if self._send_temperature:
            body["temperature"] = self.temperature
        if self.seed is not None:
            body["seed"] = self.seed
        if schema is not None and self._schema_mode != "off":
            body["response_format"] = json_schema_format(schema, strict=self._schema_mode == "strict")
        if self.options:
            body["extra_body"] = dict(self.options)
        return body

    def _fallback(self, err: Exception, body: dict) -> bool:
        """Adapt to an endpoint that rejects a parameter (400/422); True when the request changed."""
        text = error_detail(err).lower()
        if "response_format" in body and any(k in text for k in ("response_format", "json_schema")):
            strict = body["response_format"]["json_schema"].get("strict", False)
            self._schema_mode = "loose" if strict else "off"
            log.warning("LLM endpoint %s rejected %s JSON-schema output; %s", self.base_url,
                        "strict" if strict else "the", "retrying without strict" if strict
                        else "using plain text from now on (replies are parsed)")
            return True
        if self._max_tokens_key == "max_tokens" and "max_completion_tokens" in text:
            self._max_tokens_key = "max_completion_tokens"
            return True
        if self._send_temperature and "temperature" in text and "unsupported" in text:
            self._send_temperature = False
            log.warning("LLM model %s does not accept temperature; using its default", self.model_id)
            return True
        return False

    def _wait_or_raise(self, attempts: int, end: float, kind: str, retry_after: str | None = None,
                       hint: str | None = None) -> None:
        hint = hint or "check that the server is up and reachable, or raise llm.max_retries / llm.timeout_s"
        if attempts > self.max_retries:
            raise LLMError(self._fail_line(kind, attempts, hint)) from None
        delay = retry_delay(self.backoff_s, attempts, retry_after)
        if end - time.monotonic() - delay < min(self.timeout_s, 1.0) / 2:  # no time left for another try
            raise LLMError(self._fail_line(kind, attempts, f"the {self.budget_s:.3g}s budget of one LLM call "
                                           "(llm.timeout_s per attempt plus backoff) is spent; " + hint)) from None
        log.warning("LLM request to %s failed (%s); retry %d/%d in %.2fs", self.base_url, kind,
                    attempts, self.max_retries, delay)
        time.sleep(delay)

    def _reply(self, data: Any, attempts: int) -> Reply:
        choices = data.get("choices") if isinstance(data, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(first, dict):
            err = (data.get("error") if isinstance(data, dict) else None) or data
            raise LLMError(self._fail_line(f"reply has no choices ({redact.scrub(one_line(err, 200))})",
                                           attempts, "check llm.model and the server's log"))
        msg = first.get("message")
        text = msg.get("content") if isinstance(msg, dict) else None
        reason = first.get("finish_reason")
        self.last_finish_reason = reason if isinstance(reason, str) else None
        return Reply(text if isinstance(text, str) else "", self.last_finish_reason)

    # ------------------------------------------------------------------ messages

    def _served_model(self) -> str:
        """The first model a local server lists (llama.cpp accepts any name; vLLM/Ollama do not)."""
        try:
            self.requests += 1
            wait = min(self.timeout_s, 10.0)
            models = self._request(lambda c: c.models.list(timeout=wait), wait)
            first = next(iter(models.data), None)
            if first is not None and first.id:
                return str(first.id)
        except Exception as e:  # the first real request reports problems clearly
            log.debug("could not list models at %s: %s", self.base_url, type(e).__name__)
        return "default"

    def _hint(self, code: int) -> str:
        if code in (401, 403):
            return f"check the key in the environment variable {self._key_env}"
        if code == 404:
            return f"check llm.model ({self.model_id!r}) and llm.base_url (usually ends in /v1)"
        return "check llm.model, the request options (llm.options) and the server's log"

    def _fail_line(self, kind: str, attempts: int, hint: str) -> str:
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        return redact.scrub(f"LLM endpoint {self.base_url}/chat/completions (model {self.model_id!r}) "
                           f"failed: {kind} after {tries}; {hint}.")
