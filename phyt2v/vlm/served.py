"""A vision chat endpoint (OpenAI-compatible: vLLM, SGLang, a provider) asked about a video's sampled frames,
shared by the served captioner (``captioner.backend: openai``) and the served ``vlm-judge``.

Frames are sampled as the local VLM samples them (``video_frames``: ``num_frames`` spread evenly over the video,
longest side at most ``frame_size``) and sent as base64 JPEG ``image_url`` parts, or, with ``video=True``, written
into one mp4 at the rate they were sampled and sent as one base64 ``video_url`` part (vLLM takes it for Qwen-VL
models).

Requests: the key comes only from the environment variable named by ``api_key_env`` (never stored on the object,
written or shown; a server without auth needs none); retries are ours and bounded (the SDK's are off): 408, 429
(its Retry-After honoured, up to a minute), 5xx, timeouts, connection errors and non-JSON replies are retried
``max_retries`` times with doubling backoff; each attempt has a hard deadline of ``timeout_s`` (a server that
trickles its reply is abandoned). Every failure is a ``BackendError`` in one line naming the endpoint, the model,
what failed and the fix.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConfigError
from ..runtime.deadline import Abandoned, call_with_deadline, error_detail, one_line, retry_delay
from ..store import redact

log = logging.getLogger("phyt2v")

JPEG_QUALITY = 90
LOCAL_DUMMY_KEY = "not-needed"  # servers without auth accept any key; the SDK insists on one


def video_option(section: str, options: dict[str, Any]) -> bool:
    """``<section>.options.video`` (default false): send one ``video_url`` part instead of the frames as images."""
    value = options.get("video", False)
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.options.video must be true or false, got {value!r}")
    return value


def jpeg_part(image: Any) -> dict[str, Any]:
    """One PIL image as a base64 JPEG ``image_url`` content part."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}


def video_part(frames: list, fps: float) -> dict[str, Any]:
    """The frames written into one mp4 at ``fps`` (the rate they were sampled at), as a base64 ``video_url`` part."""
    from ..store.video_io import write_video

    with tempfile.TemporaryDirectory(prefix="phyt2v-frames-") as tmp:
        path = write_video(frames, Path(tmp) / "frames.mp4", fps)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    return {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}


def frame_parts(video: str | Path, num_frames: int, frame_size: int, *, as_video: bool = False) -> list[dict]:
    """The content parts showing ``video``: its sampled frames as JPEG images, or as one mp4 (``as_video``)."""
    from .runtime import video_frames
    from .video import sampled_fps

    frames = video_frames(video, num_frames, frame_size)
    if as_video:
        return [video_part(frames, sampled_fps(video, len(frames)))]
    return [jpeg_part(f) for f in frames]


def _secs(seconds: float) -> str:
    return f"{max(round(seconds, 1), 0.1):g}s"


class ServedVLM:
    """``chat(content, max_tokens=..., **fields) -> dict``: one user turn of ``content`` parts to
    ``{base_url}/chat/completions``; the reply as parsed JSON (``choices[0]...``)."""

    def __init__(self, *, role: str, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0):
        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ConfigError(f"{role}: need max_retries >= 0 and timeout_s > 0 (got {max_retries}, {timeout_s})")
        if not model:
            raise ConfigError(f"{role}.model is empty: set it to the model the endpoint serves")
        self.role, self.model_id = role, model
        self._key_env = api_key_env
        redact.watch(api_key_env)  # its value is scrubbed from every message and write
        if not os.environ.get(api_key_env) and not base_url:
            raise ConfigError(f"no API key for the served {role}: set the environment variable {api_key_env} "
                              f"({role}.api_key_env names it), or set {role}.base_url to a local OpenAI-compatible "
                              "server (vLLM, SGLang).")
        self._base_url_arg = base_url or None
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self._client = self._new_client()
        self.base_url = str(self._client.base_url).rstrip("/")
        self._max_tokens_key = "max_tokens"
        self.requests = 0  # HTTP requests sent (tests count them)

    def __repr__(self) -> str:
        return f"ServedVLM(role={self.role!r}, model_id={self.model_id!r}, base_url={self.base_url!r})"

    def _new_client(self) -> Any:
        import openai

        key = os.environ.get(self._key_env) or LOCAL_DUMMY_KEY
        return openai.OpenAI(api_key=key, base_url=self._base_url_arg, timeout=self.timeout_s, max_retries=0)

    def close(self) -> None:
        self._client.close()

    def chat(self, content: list[dict[str, Any]], *, max_tokens: int, **fields: Any) -> dict[str, Any]:
        import openai

        attempts = 0
        while True:
            body = {"model": self.model_id, "messages": [{"role": "user", "content": content}],
                    self._max_tokens_key: max_tokens, "temperature": 0.0, **fields}
            attempts += 1
            self.requests += 1
            client = self._client
            try:
                http = call_with_deadline(lambda c=client, b=body: c.chat.completions.with_raw_response.create(**b)
                                          .http_response, self.timeout_s, "phyt2v-vlm-request")
            except Abandoned:
                self._client = self._new_client()  # the abandoned client's sockets close; the worker then ends
                try:
                    client.close()
                except Exception as e:  # closing a half-used pool must never hide the timeout
                    log.debug("closing the abandoned %s client failed: %s", self.role, type(e).__name__)
                self._wait_or_raise(attempts, f"timeout after {_secs(self.timeout_s)}")
                continue
            except openai.APIStatusError as e:
                code, detail = e.status_code, error_detail(e)
                if code in (400, 422) and self._max_tokens_key == "max_tokens" and "max_completion_tokens" in detail:
                    self._max_tokens_key = "max_completion_tokens"
                    attempts -= 1  # a changed request, not a retry
                    continue
                if code in (408, 429) or code >= 500:
                    self._wait_or_raise(attempts, f"HTTP {code}" + (" (rate limited)" if code == 429 else ""),
                                        e.response.headers.get("retry-after"))
                    continue
                raise BackendError(self.fail_line(f"HTTP {code}: {detail}", attempts, self._hint(code))) from None
            except openai.APITimeoutError:
                self._wait_or_raise(attempts, f"timeout after {_secs(self.timeout_s)}")
                continue
            except openai.APIConnectionError as e:
                cause = type(e.__cause__).__name__ if e.__cause__ else "no response"
                self._wait_or_raise(attempts, f"connection error ({cause})")
                continue
            except openai.OpenAIError as e:
                raise BackendError(self.fail_line(f"bad response ({type(e).__name__}: {error_detail(e)})", attempts,
                                                  "check that the endpoint is OpenAI-compatible")) from None
            try:
                data = json.loads(http.text)
            except ValueError:
                start = redact.scrub(one_line(http.text, 80)) or "(empty)"
                self._wait_or_raise(attempts, f"HTTP {http.status_code} reply is not JSON (body starts: {start!r})",
                                    hint=f"check {self.role}.base_url: it must be the OpenAI-compatible API "
                                         "(usually ending in /v1)")
                continue
            if not (isinstance(data, dict) and isinstance(data.get("choices"), list) and data["choices"]
                    and isinstance(data["choices"][0], dict)):
                err = (data.get("error") if isinstance(data, dict) else None) or data
                raise BackendError(self.fail_line(f"reply has no choices ({redact.scrub(one_line(err, 200))})",
                                                  attempts, f"check {self.role}.model and the server's log"))
            return data

    def _wait_or_raise(self, attempts: int, kind: str, retry_after: str | None = None, hint: str | None = None) -> None:
        if attempts > self.max_retries:
            hint = hint or (f"check that the server is up and reachable, or raise {self.role}.max_retries / "
                            f"{self.role}.timeout_s")
            raise BackendError(self.fail_line(kind, attempts, hint)) from None
        delay = retry_delay(self.backoff_s, attempts, retry_after)
        log.warning("%s request to %s failed (%s); retry %d/%d in %.2fs", self.role, self.base_url, kind, attempts,
                    self.max_retries, delay)
        time.sleep(delay)

    def _hint(self, code: int) -> str:
        if code in (401, 403):
            return f"check the key in the environment variable {self._key_env} ({self.role}.api_key_env)"
        if code == 404:
            return f"check {self.role}.model ({self.model_id!r}) and {self.role}.base_url (usually ends in /v1)"
        return (f"check that {self.role}.model is a vision model and that the server takes this many images per "
                "request (vLLM: --limit-mm-per-prompt)")

    def fail_line(self, kind: str, attempts: int, hint: str) -> str:
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        return redact.scrub(f"{self.role} endpoint {self.base_url}/chat/completions (model {self.model_id!r}) "
                            f"failed: {kind} after {tries}; {hint}.")
