"""Loopback video servers for the served generators, speaking each protocol as the real servers do, rendering REAL
mp4 files with the tiny random-weight CogVideoX pipeline (``phyt2v.tiny``).

``VideosServer`` is the Videos API as vLLM-Omni documents it (docs/serving/videos_api.md there; its pydantic
protocol in vllm_omni/entrypoints/openai/protocol/videos.py): ``POST /v1/videos`` takes multipart/form-data (or a
JSON body) and returns a video object ``{id, object: "video", status, progress, model, prompt, seconds, size,
error}``; ``GET /v1/videos/{id}`` polls it (``queued`` -> ``in_progress`` -> ``completed`` | ``failed`` with
``error.code``/``error.message``); ``GET /v1/videos/{id}/content`` returns the mp4; ``DELETE /v1/videos/{id}`` removes
it; unknown ids get 404; ``GET /v1/models`` lists the model. Knobs: ``render_s`` (seconds a job stays in progress),
``moderate`` (a word that makes a job fail with ``moderation_blocked``), ``rate_limit`` (the first N creates get 429
with Retry-After), ``errors_5xx`` (the first N requests get 503), ``hold`` (jobs stay in progress until ``release``),
``forget(id)``. ``log`` records every request; ``peak`` is the most jobs in progress at once.

``VeoServer`` is the REST shape google-genai 3.x speaks in Vertex mode: ``POST .../models/{model}:predictLongRunning``
starts an operation (``{name}``), ``POST .../models/{model}:fetchPredictOperation`` with ``{operationName}`` polls it
(``{name, done, response: {videos: [{bytesBase64Encoded, mimeType}]}}`` or ``{done, error: {code, message}}``).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import tempfile
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from llm_servers import _Loopback

_RENDER_LOCK = threading.Lock()  # one tiny pipeline, one render at a time (jobs overlap in their render_s wait)
_PIPE: dict[str, Any] = {}


def render_mp4(prompt: str, *, seed: int, frames: int = 9, size: tuple[int, int] = (16, 16), steps: int = 2,
               fps: int = 8) -> bytes:
    """A real mp4 rendered by the tiny random-weight CogVideoX pipeline (frames on its 4k+1 rule)."""
    from phyt2v.generators.diffusers_gen import DiffusersGenerator

    with _RENDER_LOCK:
        if "pipe" not in _PIPE:
            _PIPE["pipe"] = DiffusersGenerator("tiny", device="cpu").pipe
        frames = max(5, (frames - 1) // 4 * 4 + 1)
        gen = DiffusersGenerator("tiny", pipeline=_PIPE["pipe"], device="cpu", num_frames=frames, steps=steps,
                                 height=size[1], width=size[0], fps=fps, guidance=6.0)
        with tempfile.TemporaryDirectory() as d:
            out = gen.generate(prompt, seed=seed, out_path=Path(d) / "v.mp4")
            return Path(out.path).read_bytes()


def parse_form(ctype: str, body: bytes) -> dict[str, str]:
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ValueError("not multipart")
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        out[name] = part.get_content()
    return out


class VideosServer(_Loopback):
    def __init__(self, *, model: str = "tiny-video", key: str | None = None, render_s: float = 0.0,
                 moderate: str | None = None, rate_limit: int = 0, retry_after: float = 1.0, errors_5xx: int = 0,
                 hold: bool = False):
        self.model, self.key, self.render_s, self.moderate = model, key, render_s, moderate
        self.rate_limit, self.retry_after, self.errors_5xx, self.hold = rate_limit, retry_after, errors_5xx, hold
        self.jobs: dict[str, dict[str, Any]] = {}
        self.content: dict[str, bytes] = {}
        self.log: list[dict[str, Any]] = []
        self.peak = 0
        self._running = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ what tests read
    def creates(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["method"] == "POST" and e["path"] == "/v1/videos" and e["code"] == 200]

    def release(self) -> None:
        self._released.set()

    def forget(self, job_id: str) -> None:
        with self._lock:
            self.jobs.pop(job_id, None)
            self.content.pop(job_id, None)

    # ------------------------------------------------------------ the jobs
    def _run(self, job_id: str, fields: dict[str, Any]) -> None:
        job = self.jobs[job_id]
        time.sleep(0.05)
        with self._lock:
            job["status"] = "in_progress"
            self._running += 1
            self.peak = max(self.peak, self._running)
        try:
            if self.hold:
                while not self._released.wait(0.05):
                    job["progress"] = 10
            end = time.monotonic() + self.render_s
            while time.monotonic() < end:
                job["progress"] = min(90, int(100 * (1 - (end - time.monotonic()) / max(self.render_s, 1e-6))))
                time.sleep(0.02)
            if self.moderate and self.moderate in fields["prompt"]:
                job.update(status="failed", error={"code": "moderation_blocked",
                                                   "message": "Your request was blocked by our moderation system."})
                return
            w, h = (int(x) for x in str(fields.get("size", "16x16")).split("x"))
            data = render_mp4(fields["prompt"], seed=int(fields.get("seed", 0)), frames=int(fields.get("num_frames", 9)),
                              size=(w, h), steps=int(fields.get("num_inference_steps", 2)), fps=int(fields.get("fps", 8)))
            with self._lock:
                if job_id in self.jobs:
                    self.content[job_id] = data
                    job.update(status="completed", progress=100, completed_at=int(time.time()))
        finally:
            with self._lock:
                self._running -= 1

    def __enter__(self) -> "VideosServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, headers: dict[str, str] | None = None,
                      ctype: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _entry(self, code: int, **extra: Any) -> None:
                with owner._lock:
                    owner.log.append({"method": self.command, "path": self.path.split("?")[0], "code": code,
                                      "auth": self.headers.get("Authorization"), "time": time.monotonic(), **extra})

            def _gate(self) -> bool:
                """503 for the first errors_5xx requests; 401 when a key is expected and missing or wrong."""
                with owner._lock:
                    fail = owner.errors_5xx > 0
                    owner.errors_5xx -= fail
                if fail:
                    self._entry(503)
                    self._send(503, {"error": {"message": "engine overloaded", "type": "server_error"}})
                    return False
                if owner.key and self.headers.get("Authorization") != f"Bearer {owner.key}":
                    self._entry(401)
                    self._send(401, {"error": {"message": "invalid api key", "type": "auth_error"}})
                    return False
                return True

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/v1/models":
                    self._entry(200)
                    return self._send(200, {"object": "list", "data": [{"id": owner.model, "object": "model"}]})
                if not self._gate():
                    return
                m = re.fullmatch(r"/v1/videos/([^/]+)(/content)?", path)
                job = owner.jobs.get(m.group(1)) if m else None
                if job is None:
                    self._entry(404)
                    return self._send(404, {"error": {"message": "Video not found", "code": 404}})
                if m.group(2):
                    data = owner.content.get(job["id"])
                    if data is None:
                        self._entry(404)
                        return self._send(404, {"error": {"message": "Generation is still in progress"}})
                    self._entry(200)
                    return self._send(200, data, ctype="video/mp4")
                self._entry(200, status=job["status"])
                return self._send(200, job)

            def do_DELETE(self) -> None:
                m = re.fullmatch(r"/v1/videos/([^/]+)", self.path)
                with owner._lock:
                    job = owner.jobs.pop(m.group(1), None) if m else None
                self._entry(200 if job else 404)
                if job is None:
                    return self._send(404, {"error": {"message": "Video not found"}})
                return self._send(200, {"id": job["id"], "deleted": True, "object": "video.deleted"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/videos":
                    self._entry(404)
                    return self._send(404, {"error": {"message": "not found"}})
                if not self._gate():
                    return
                with owner._lock:
                    limited = owner.rate_limit > 0
                    owner.rate_limit -= limited
                if limited:
                    self._entry(429)
                    return self._send(429, {"error": {"message": "rate limited"}},
                                      {"Retry-After": f"{owner.retry_after:g}"})
                ctype = self.headers.get("Content-Type", "")
                try:
                    fields = parse_form(ctype, body) if ctype.startswith("multipart/form-data") else json.loads(body)
                except (ValueError, json.JSONDecodeError) as e:
                    self._entry(400)
                    return self._send(400, {"error": {"message": f"bad body: {e}"}})
                if not fields.get("prompt"):
                    self._entry(400)
                    return self._send(400, {"error": {"message": "prompt is required"}})
                if fields.get("model") not in (None, owner.model):
                    self._entry(404, fields=fields)
                    return self._send(404, {"error": {"message": f"model {fields.get('model')} not served"}})
                job_id = f"video_{next(owner._ids)}"
                job = {"id": job_id, "object": "video", "status": "queued", "progress": 0, "model": owner.model,
                       "prompt": fields["prompt"], "seconds": str(fields.get("seconds", "4")),
                       "size": fields.get("size"), "created_at": int(time.time()), "error": None}
                with owner._lock:
                    owner.jobs[job_id] = job
                self._entry(200, fields=fields, ctype=ctype.split(";")[0], id=job_id)
                threading.Thread(target=owner._run, args=(job_id, fields), daemon=True).start()
                return self._send(200, dict(job))

        return self._serve(Handler)


class VeoServer(_Loopback):
    """The Vertex long-running-operation shape of Veo; ``fail`` makes each operation end with an error."""

    def __init__(self, *, render_s: float = 0.0, fail: tuple[int, str] | None = None):
        self.render_s, self.fail = render_s, fail
        self.ops: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def starts(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["path"].endswith(":predictLongRunning") and e["code"] == 200]

    def forget(self, name: str) -> None:
        self.ops.pop(name, None)

    def _run(self, name: str, body: dict[str, Any]) -> None:
        time.sleep(self.render_s)
        op = self.ops.get(name)
        if op is None:
            return
        if self.fail:
            op.update(done=True, error={"code": self.fail[0], "message": self.fail[1]})
            return
        params = body.get("parameters") or {}
        data = render_mp4(body["instances"][0]["prompt"], seed=int(params.get("seed", 0)))
        op.update(done=True, response={"@type": "type.googleapis.com/cloud.ai.large_models.vision."
                                                 "GenerateVideoResponse",
                                       "videos": [{"bytesBase64Encoded": base64.b64encode(data).decode(),
                                                   "mimeType": "video/mp4"}]})

    def __enter__(self) -> "VeoServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                path = self.path.split("?")[0]
                entry = {"path": path, "body": body, "key": self.headers.get("x-goog-api-key"), "code": 200}
                with owner._lock:
                    owner.log.append(entry)
                m = re.search(r"models/([^/:]+):(predictLongRunning|fetchPredictOperation)$", path)
                if m and m.group(2) == "predictLongRunning":
                    name = f"projects/p/locations/us-central1/publishers/google/models/{m.group(1)}/operations/" \
                           f"op{next(owner._ids)}"
                    owner.ops[name] = {"name": name, "done": False}
                    threading.Thread(target=owner._run, args=(name, body), daemon=True).start()
                    return self._send(200, {"name": name})
                if m:
                    op = owner.ops.get(body.get("operationName", ""))
                    if op is not None:
                        return self._send(200, op)
                entry["code"] = 404
                return self._send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

        return self._serve(Handler)
