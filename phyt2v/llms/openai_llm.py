"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp / xllamacpp server.

The key comes only from the environment variable named by ``api_key_env``; it is never
stored on the object, written anywhere, or shown in an error. Retries are bounded and ours
(the client's own retries are off) so the number of requests is exact.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LLMError
from ._common import check_messages, json_schema_format, one_line

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phyt2v")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"  # used only when neither llm.model nor llm.base_url is set
LOCAL_DUMMY_KEY = "not-needed"  # local servers accept any key
MAX_RETRY_AFTER_S = 60.0


class OpenAILLM:
    """Chat completions over HTTP. ``options`` are extra request-body fields (e.g. top_p)."""

    backend = "openai"

    def __init__(self, *, model: str | None = None, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", temperature: float = 0.2, seed: int | None = 0,
                 max_tokens: int = 1024, timeout_s: float = 120.0, max_retries: int = 3,
                 backoff_s: float = 1.0, options: dict[str, Any] | None = None):
        import openai

        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ConfigError(f"llm: need max_retries >= 0, timeout_s > 0, backoff_s >= 0 "
                              f"(got {max_retries}, {timeout_s}, {backoff_s})")
        self._key_env = api_key_env
        key = os.environ.get(api_key_env) or None
        if key is None and not base_url:
            raise ConfigError(f"no API key: set the environment variable {api_key_env} "
                              "(llm.api_key_env names it), or set llm.base_url to a local "
                              "OpenAI-compatible server (vLLM, Ollama, llama.cpp).")
        self._client = openai.OpenAI(api_key=key or LOCAL_DUMMY_KEY, base_url=base_url or None,
                                     timeout=timeout_s, max_retries=0)
        self.base_url = str(self._client.base_url).rstrip("/")
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.options = dict(options or {})
        self._schema_mode = "strict"  # strict -> loose -> off, as the endpoint rejects them
        self._max_tokens_key = "max_tokens"
        self._send_temperature = True
        self.requests = 0  # HTTP requests sent (for run records and tests)
        self.model_id = model or (self._served_model() if base_url else DEFAULT_OPENAI_MODEL)

    @classmethod
    def from_config(cls, config: "Config") -> "OpenAILLM":
        c = config.llm
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

    # ------------------------------------------------------------------ calls

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> str:
        """Send one chat request (with bounded retries) and return the reply text ("" if empty)."""
        import openai

        msgs = check_messages(messages)
        attempts, fallbacks = 0, 0
        while True:
            body = self._body(msgs, schema, max_tokens or self.max_tokens)
            attempts += 1
            self.requests += 1
            try:
                resp = self._client.chat.completions.create(**body)
            except openai.APIStatusError as e:
                code = e.status_code
                if code in (400, 422) and fallbacks < 4 and self._fallback(e, body):
                    attempts -= 1  # a changed request, not a retry
                    fallbacks += 1
                    continue
                if code in (408, 429) or code >= 500:
                    kind = f"HTTP {code}" + (" (rate limited)" if code == 429 else "")
                    self._wait_or_raise(attempts, kind, e.response.headers.get("retry-after"))
                    continue
                raise LLMError(self._fail_line(f"HTTP {code}: {self._detail(e)}", attempts,
                                               self._hint(code))) from None
            except openai.APITimeoutError:
                self._wait_or_raise(attempts, f"timeout after {self.timeout_s:g}s")
                continue
            except openai.APIConnectionError as e:
                cause = type(e.__cause__).__name__ if e.__cause__ else "no response"
                self._wait_or_raise(attempts, f"connection error ({cause})")
                continue
            except openai.OpenAIError as e:
                raise LLMError(self._fail_line(f"bad response ({type(e).__name__}: {self._detail(e)})",
                                               attempts, "check that the endpoint is OpenAI-compatible"
                                               )) from None
            return self._text(resp, attempts)

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
        text = self._detail(err).lower()
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

    def _wait_or_raise(self, attempts: int, kind: str, retry_after: str | None = None) -> None:
        if attempts > self.max_retries:
            raise LLMError(self._fail_line(kind, attempts, "check that the server is up and reachable, "
                                           "or raise llm.max_retries / llm.timeout_s")) from None
        delay = self.backoff_s * 2 ** (attempts - 1)
        try:
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S)) if retry_after else delay
        except ValueError:
            pass
        log.warning("LLM request to %s failed (%s); retry %d/%d in %.2fs", self.base_url, kind,
                    attempts, self.max_retries, delay)
        time.sleep(delay)

    def _text(self, resp: Any, attempts: int) -> str:
        choices = getattr(resp, "choices", None)
        if not choices:
            err = getattr(resp, "error", None) or getattr(resp, "model_extra", None) or {}
            raise LLMError(self._fail_line(f"reply has no choices ({one_line(err, 200)})", attempts,
                                           "check llm.model and the server's log"))
        msg = choices[0].message
        return (msg.content if msg is not None and msg.content else "") or ""

    # ------------------------------------------------------------------ messages

    def _served_model(self) -> str:
        """The first model a local server lists (llama.cpp accepts any name; vLLM/Ollama do not)."""
        try:
            self.requests += 1
            models = self._client.models.list(timeout=min(self.timeout_s, 10.0))
            first = next(iter(models.data), None)
            if first is not None and first.id:
                return str(first.id)
        except Exception as e:  # the first real request reports problems clearly
            log.debug("could not list models at %s: %s", self.base_url, type(e).__name__)
        return "default"

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self._key_env)
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _detail(self, err: Exception) -> str:
        body = getattr(err, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            text = inner.get("message", inner) if isinstance(inner, dict) else inner
        else:
            text = getattr(err, "message", None) or str(err)
        return self._scrub(one_line(text, 240))

    def _hint(self, code: int) -> str:
        if code in (401, 403):
            return f"check the key in the environment variable {self._key_env}"
        if code == 404:
            return f"check llm.model ({self.model_id!r}) and llm.base_url (usually ends in /v1)"
        return "check llm.model, the request options (llm.options) and the server's log"

    def _fail_line(self, kind: str, attempts: int, hint: str) -> str:
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        return self._scrub(f"LLM endpoint {self.base_url}/chat/completions (model {self.model_id!r}) "
                           f"failed: {kind} after {tries}; {hint}.")
