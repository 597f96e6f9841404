"""``generator.backend: openai``: any server of the OpenAI-style Videos API (vLLM-Omni, SGLang Diffusion, NVIDIA
Dynamo), through a small httpx client of the protocol (not the openai SDK's deprecated ``videos`` resource).

    POST   {base_url}/videos               create a job -> a video object {id, status, progress, error, ...}
    GET    {base_url}/videos/{id}          poll: queued -> in_progress -> completed | failed (error.code, .message)
    GET    {base_url}/videos/{id}/content  the mp4
    DELETE {base_url}/videos/{id}          remove it (past generator.timeout_s)

The create request (``generator.options.request_format``):
- ``form`` (default): multipart/form-data, as the openai SDK sends it and vLLM-Omni documents it: ``prompt``,
  ``model``, ``size`` "WxH", ``seconds``, and the diffusion fields ``width``, ``height``, ``num_frames``, ``fps``,
  ``num_inference_steps``, ``guidance_scale``, ``seed``, ``negative_prompt``;
- ``json``: the same fields as one JSON object (SGLang Diffusion reads JSON for text-to-video);
- ``nvext``: JSON with the diffusion fields inside ``nvext`` (NVIDIA Dynamo), whose reply may carry the finished
  video inline (``data[0].b64_json`` or ``data[0].url``).
Every other ``generator.options`` key is sent as given (a dict or list JSON-encoded in a form); ``send_seed: false``
leaves the seed out (the video is recorded as unseeded: ``knobs.seed_sent`` false).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError
from ..runtime.deadline import one_line
from .jobs import JobGone, JobState, Transient, retry_after_s
from .served import ServedGenerator

if TYPE_CHECKING:
    from ..config import Config

FORMATS = ("form", "json", "nvext")
REQUEST_S = 60.0       # one request's own timeout (the job's deadline is generator.timeout_s)
NVEXT_KEYS = ("fps", "num_frames", "negative_prompt", "num_inference_steps", "guidance_scale", "seed")


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """``fields`` as a multipart/form-data body (text parts only) and its Content-Type."""
    boundary = f"phyt2v-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode()
        out += str(value).encode("utf-8") + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class OpenAIVideoGenerator(ServedGenerator):
    """A Videos API endpoint; ``generator.base_url`` (or $OPENAI_BASE_URL) names it."""

    backend = "openai"
    default_key_env = "OPENAI_API_KEY"
    default_budget = 512  # UMT5's limit (Wan, the served-wan preset); set generator.max_prompt_tokens per model
    default_seconds = 4.0  # what a Videos API server renders when asked no length (its `seconds` default)

    def __init__(self, config: "Config"):
        super().__init__(config)
        import httpx2

        self._httpx = httpx2
        base = config.generator.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise ConfigError("generator.backend openai needs generator.base_url, the Videos API server's base "
                              "(e.g. http://127.0.0.1:8000/v1 for `vllm serve <model> --omni --port 8000`)")
        self.base_url = base.rstrip("/")
        self.format = self.options.pop("request_format", "form")
        if self.format not in FORMATS:
            raise ConfigError(f"generator.options.request_format {self.format!r}: use one of {', '.join(FORMATS)}")
        self.send_seed = self.options.pop("send_seed", True)
        if not isinstance(self.send_seed, bool):
            raise ConfigError(f"generator.options.send_seed must be true or false, got {self.send_seed!r}")
        self._client = httpx2.Client(timeout=REQUEST_S, follow_redirects=True)

    @classmethod
    def check_before_load(cls, config: "Config") -> None:
        super().check_before_load(config)
        fmt = config.generator.options.get("request_format", "form")
        if fmt not in FORMATS:
            raise ConfigError(f"generator.options.request_format {fmt!r}: use one of {', '.join(FORMATS)}")

    def close(self) -> None:
        self._client.close()

    # ---------------------------------------------------------------- the request
    def fields(self, prompt: str, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
        """The create request's fields (None values left out)."""
        height, width = overrides.get("height", self.height), overrides.get("width", self.width)
        frames, fps = self.num_frames, self.fps
        f: dict[str, Any] = {"prompt": prompt, "model": overrides.get("model") or self.model_id}
        if height and width:
            f["size"] = f"{width}x{height}"
        if frames and fps:
            f["seconds"] = str(max(1, round(frames / fps)))
        f.update({"width": width, "height": height, "num_frames": frames, "fps": fps,
                  "num_inference_steps": overrides.get("steps", self.steps), "guidance_scale": self.guidance,
                  "seed": seed if self.send_seed else None})
        f.update(self.options)  # negative_prompt and anything else, as given
        return {k: v for k, v in f.items() if v is not None}

    def request(self, method: str, path: str, *, body: bytes | None = None, ctype: str | None = None) -> Any:
        """One HTTP request; ``Transient`` for what is worth retrying, BackendError for the rest (404 is the
        caller's: returned)."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        headers = {"Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        httpx = self._httpx
        try:
            r = self._client.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise Transient(f"timeout after {REQUEST_S:g}s") from None
        except httpx.TransportError as e:
            raise Transient(f"connection error ({type(e).__name__})") from None
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise Transient(f"HTTP {r.status_code}" + (" (rate limited)" if r.status_code == 429 else ""),
                            retry_after_s(r.headers.get("retry-after")))
        if r.status_code >= 400 and r.status_code != 404:
            hint = (f"check the key in ${self.key_env} (generator.api_key_env)" if r.status_code in (401, 403) else
                    "check generator.model, generator.options and the server's log")
            raise BackendError(self.line(f"{method} {url} failed: HTTP {r.status_code}: "
                                         f"{self.detail(r)}; {hint}"))
        return r

    @staticmethod
    def detail(r: Any) -> str:
        try:
            data = r.json()
        except ValueError:
            return one_line(r.text or "(empty)", 200)
        err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
        if isinstance(err, dict):
            err = err.get("message", err)
        return one_line(err, 200)

    def reply_json(self, r: Any, what: str) -> dict[str, Any]:
        try:
            data = r.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BackendError(self.line(f"{what}: the reply is not a video object (HTTP {r.status_code}, body "
                                         f"starts {one_line(r.text, 80)!r}); is generator.base_url the Videos API "
                                         "(usually ending in /v1)?"))
        return data

    # ---------------------------------------------------------------- the job
    def create(self, prompt: str, seed: int, overrides: dict[str, Any], job_log: Any) -> tuple[str, bool, Any]:
        f = self.fields(prompt, seed, overrides)
        if self.format == "form":
            body, ctype = multipart({k: form_value(v) for k, v in f.items()})
        else:
            if self.format == "nvext":
                ext = {k: f.pop(k) for k in NVEXT_KEYS if k in f}
                f = {**{k: v for k, v in f.items() if k not in ("width", "height")}, "nvext": ext}
                if "seconds" in f:
                    f["seconds"] = int(f["seconds"])
            body, ctype = json.dumps(f).encode(), "application/json"

        def post() -> Any:
            r = self.request("POST", "/videos", body=body, ctype=ctype)
            if r.status_code == 404:
                raise BackendError(self.line(f"POST {self.base_url}/videos: HTTP 404; is generator.base_url the "
                                             "Videos API (usually ending in /v1), and does the server serve video?"))
            return self.reply_json(r, "create")

        data = self.retrying("creating a job", post, job_log)
        job_id = data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise BackendError(self.line(f"the create reply has no job id: {one_line(data, 200)}"))
        return job_id, "seed" in f or "seed" in f.get("nvext", {}), self.as_state(data)

    def as_state(self, data: dict[str, Any]) -> JobState:
        err = data.get("error") if isinstance(data.get("error"), dict) else {}
        status = str(data.get("status") or "queued")
        if status not in ("queued", "in_progress", "completed", "failed"):
            status = "in_progress"  # e.g. SGLang's interim states: still running
        progress = data.get("progress")
        return JobState(status, float(progress) if isinstance(progress, (int, float)) else None,
                        str(err["code"]) if err.get("code") is not None else None, err.get("message"), data)

    def state(self, job_id: str, job_log: Any) -> JobState:
        r = self.request("GET", f"/videos/{job_id}")
        if r.status_code == 404:
            raise JobGone(job_id)
        return self.as_state(self.reply_json(r, f"polling job {job_id}"))

    def download(self, job_id: str, state: JobState, job_log: Any) -> bytes:
        items = (state.raw or {}).get("data") if isinstance(state.raw, dict) else None
        first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
        if first.get("b64_json"):  # Dynamo: the video inline
            return base64.b64decode(first["b64_json"])
        path = first.get("url") or f"/videos/{job_id}/content"
        if path.startswith("/") and not path.startswith(f"/videos/{job_id}"):
            origin = self.base_url.split("/", 3)
            path = "/".join(origin[:3]) + path  # a server-relative URL
        r = self.retrying(f"downloading job {job_id}", lambda: self.request("GET", path), job_log)
        if r.status_code == 404:
            raise JobGone(job_id)
        return r.content

    def delete(self, job_id: str) -> bool:
        try:
            r = self.request("DELETE", f"/videos/{job_id}")
        except (Transient, BackendError):
            return False
        return r.status_code < 300
