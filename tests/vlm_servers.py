"""A loopback OpenAI-compatible vision chat server for the served captioner and judge (``VisionServer``).

It speaks the protocol as vLLM does and checks each request's shape exactly, answering 400 (with an OpenAI-style
error body) when it is off: one user turn whose content parts are ``image_url`` parts holding valid base64 JPEGs
(their count and size checked against what the test expects), or one ``video_url`` part holding a valid base64 mp4,
then the text; an unknown model gets vLLM's 404. It answers:
- a question with media and ``logprobs: true``: a one-token answer with ``choices[0].logprobs.content[0]
  .top_logprobs`` from ``judge`` (by question: "physical laws" -> ``judge["pc"]``, else ``judge["sa"]``); with
  ``logprobs=False`` (a server that returns none) the same answer without logprobs;
- a question with media: a caption naming how many frames it saw;
- a text-only chat (the LLM steps): forwarded to ``upstream`` (a real model's server, e.g. SmolLM2 through
  xllamacpp) when given, else ``StepServer.answer``.
``requests`` records every chat request (headers lower-cased; media summarised as sizes, not bytes).
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from llm_servers import StepServer, _Loopback, chat_body

JUDGE = {"sa": [("Yes", -0.3), (" yes", -2.8), ("No", -1.6), ("Maybe", -4.0)],
         "pc": [("No", -0.5), (" No", -2.3), ("Yes", -1.2), ("The", -5.0)]}


def expected(table: list[tuple[str, float]]) -> float:
    """P(Yes) / (P(Yes) + P(No)) of a ``JUDGE`` table, computed here independently of the scorer."""
    import math

    yes = sum(math.exp(lp) for t, lp in table if t.strip().lower() == "yes")
    no = sum(math.exp(lp) for t, lp in table if t.strip().lower() == "no")
    return yes / (yes + no)


class BadRequest(Exception):
    pass


def _data_url(url: Any, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise BadRequest(f"expected a {prefix}... data URL, got {str(url)[:40]!r}")
    try:
        return base64.b64decode(url[len(prefix):], validate=True)
    except ValueError as e:
        raise BadRequest(f"invalid base64 in the {mime} data URL: {e}") from None


def _jpeg_size(blob: bytes) -> tuple[int, int]:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(blob))
        img.load()
    except Exception as e:
        raise BadRequest(f"image_url is not a decodable image: {e}") from None
    if img.format != "JPEG":
        raise BadRequest(f"image_url holds a {img.format}, not a JPEG")
    return img.size


def _mp4_frames(blob: bytes) -> tuple[int, int, int, float]:
    from phyt2v.store.video_io import read_frames

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        path.write_bytes(blob)
        try:
            frames, fps = read_frames(path)
        except Exception as e:
            raise BadRequest(f"video_url is not a decodable mp4: {e}") from None
    h, w = frames[0].shape[:2]
    return len(frames), w, h, fps


class VisionServer(_Loopback):
    def __init__(self, *, models: tuple[str, ...] = ("vision-test",), frames: int | None = None,
                 max_side: int | None = None, video: bool = False, logprobs: bool = True,
                 judge: dict[str, list[tuple[str, float]]] | None = None, upstream: str | None = None):
        self.models, self.frames, self.max_side, self.video = models, frames, max_side, video
        self.logprobs, self.judge, self.upstream = logprobs, judge or JUDGE, upstream.rstrip("/") if upstream else None
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()

    def media(self, parts: list[Any]) -> tuple[dict[str, Any], str]:
        """(a summary of the media parts, the text) of one user turn, checked."""
        images, videos, texts = [], [], []
        for p in parts:
            kind = p.get("type") if isinstance(p, dict) else None
            if kind == "image_url":
                images.append(_jpeg_size(_data_url((p.get("image_url") or {}).get("url"), "image/jpeg")))
            elif kind == "video_url":
                videos.append(_mp4_frames(_data_url((p.get("video_url") or {}).get("url"), "video/mp4")))
            elif kind == "text" and isinstance(p.get("text"), str):
                texts.append(p["text"])
            else:
                raise BadRequest(f"unknown content part {str(p)[:60]!r}")
        if len(texts) != 1 or not isinstance(parts[-1], dict) or parts[-1].get("type") != "text":
            raise BadRequest("expected the media parts, then one text part")
        if images and videos:
            raise BadRequest("images and a video in one request")
        if self.video and (images or len(videos) != 1):
            raise BadRequest(f"expected one video_url part, got {len(images)} images and {len(videos)} videos")
        if not self.video and videos:
            raise BadRequest("a video_url part where images were expected")
        seen = videos[0][0] if videos else len(images)
        if self.frames is not None and seen != self.frames:
            raise BadRequest(f"expected {self.frames} frames, got {seen}")
        sides = [max(w, h) for w, h in images] + [max(v[1], v[2]) for v in videos]
        if self.max_side is not None and any(s > self.max_side for s in sides):
            raise BadRequest(f"a frame is larger than {self.max_side} px: {sides}")
        return {"images": images, "videos": videos}, texts[0]

    def answer(self, body: dict[str, Any], media: dict[str, Any], text: str) -> dict[str, Any]:
        if body.get("logprobs"):
            if body.get("max_tokens") != 1 or not isinstance(body.get("top_logprobs"), int):
                raise BadRequest("a judge question needs max_tokens 1 and an integer top_logprobs")
            table = self.judge["pc" if "physical laws" in text else "sa"][: body["top_logprobs"]]
            out = chat_body(table[0][0].strip(), finish_reason="length")
            if self.logprobs:
                top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in table]
                out["choices"][0]["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
            else:
                out["choices"][0]["logprobs"] = None
            return out
        n = len(media["images"]) or media["videos"][0][0]
        return chat_body(f"A ball falls and bounces on the floor, seen in {n} frames.")

    def __enter__(self) -> "VisionServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in owner.models]})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    if self.path != "/v1/chat/completions":
                        raise BadRequest(f"no route {self.path}")
                    if not headers.get("content-type", "").startswith("application/json"):
                        raise BadRequest("the body must be JSON")
                    body = json.loads(raw)
                    if body.get("model") not in owner.models:
                        return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not "
                                                                     "exist.", "type": "NotFoundError"}})
                    msgs = body.get("messages")
                    if not isinstance(msgs, list) or not msgs:
                        raise BadRequest("messages must be a non-empty list")
                    content = msgs[-1].get("content")
                    if isinstance(content, str):  # text-only chat: the LLM steps
                        self._record(headers, body, None)
                        return self._text_chat(raw, body)
                    if len(msgs) != 1 or msgs[0].get("role") != "user" or not isinstance(content, list):
                        raise BadRequest("a vision request is one user turn of content parts")
                    media, text = owner.media(content)
                    self._record(headers, body, media)
                    self._send(200, owner.answer(body, media, text))
                except (BadRequest, ValueError, AttributeError) as e:
                    with owner._lock:
                        owner.rejected.append(str(e))
                    self._send(400, {"error": {"message": str(e), "type": "BadRequestError"}})

            def _record(self, headers: dict[str, str], body: dict[str, Any], media: dict[str, Any] | None) -> None:
                slim = {k: v for k, v in body.items() if k != "messages"}
                with owner._lock:
                    owner.requests.append({"headers": headers, "body": slim, "media": media,
                                           "text": _last_text(body["messages"])})

            def _text_chat(self, raw: bytes, body: dict[str, Any]) -> None:
                if owner.upstream is None:
                    return self._send(200, chat_body(StepServer.answer(body["messages"])))
                req = urllib.request.Request(owner.upstream + "/chat/completions", data=raw, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        code, blob = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, blob = e.code, e.read()
                self._send(code, blob)

            def _send(self, code: int, body: Any) -> None:
                blob = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

        return self._serve(Handler)

    def vision(self) -> list[dict[str, Any]]:
        """The requests that showed media (captions and judge questions)."""
        return [r for r in self.requests if r["media"] is not None]


def _last_text(messages: list[Any]) -> str:
    content = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    if isinstance(content, str):
        return content
    texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
    return texts[-1] if texts else ""
