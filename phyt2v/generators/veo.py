"""``generator.backend: veo``: Veo 3.x through google-genai (``pip install 'phyt2v[veo]'``).

``client.models.generate_videos(model, source=GenerateVideosSource(prompt), config=GenerateVideosConfig(...))``
starts a long-running operation (``POST .../models/{model}:predictLongRunning``); ``client.operations.get`` polls it
(``POST .../{model}:fetchPredictOperation``) until ``done``; the finished operation carries the video's bytes. The
operation's name is the job id recorded in the run: a resumed run polls the same operation.

``generate_videos`` runs only in Vertex mode (google-genai 3.x): with an API key (``GEMINI_API_KEY``, or the
variable ``generator.api_key_env`` names) the client uses Vertex express mode, ``genai.Client(vertexai=True,
api_key=...)``; without one, ``generator.options.project`` and ``.location`` with application-default credentials.
``generator.base_url`` points the client elsewhere (a proxy; the tests' loopback server).

Sent: the prompt, ``seed``, ``number_of_videos`` 1, ``fps`` and ``duration_seconds`` (from generator.num_frames /
generator.fps, when both are set), and every other ``generator.options`` key as a GenerateVideosConfig field
(``resolution``, ``aspect_ratio``, ``negative_prompt``, ``generate_audio``, ``enhance_prompt``, ...). Veo reports no
progress (the bar shows "generating") and its operations cannot be deleted (past the deadline the step fails and
the operation is left to finish on its own). Draft rounds use ``loop.draft.model`` (Veo takes no step count).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError
from ..runtime.deadline import one_line
from .jobs import JobGone, JobState, Transient, retry_after_s
from .served import ServedGenerator

if TYPE_CHECKING:
    from ..config import Config

INSTALL_HINT = "pip install 'phyt2v[veo]' (google-genai)"
CLIENT_KEYS = ("project", "location")


class VeoGenerator(ServedGenerator):
    backend = "veo"
    default_key_env = "GEMINI_API_KEY"
    default_budget = 1024  # phyt2v's choice (Veo's prompt limit is not published in tokens): a word budget
    seconds_option = "duration_seconds"
    default_seconds = 8.0  # the length asked when generator.options.duration_seconds is unset (cost estimate)

    def __init__(self, config: "Config"):
        super().__init__(config)
        try:
            from google import genai
            from google.genai import types
        except ImportError as e:
            raise ConfigError(f"generator.backend veo needs google-genai: {INSTALL_HINT} ({e})") from None
        self._genai, self._types = genai, types
        self._client_opts = {k: self.options.pop(k) for k in CLIENT_KEYS if k in self.options}
        self.base_url = config.generator.base_url
        self._client = self.new_client()

    @classmethod
    def check_before_load(cls, config: "Config") -> None:
        super().check_before_load(config)
        g, d = config.generator, config.loop.draft
        if g.steps is not None or g.guidance is not None:
            raise ConfigError("Veo takes no step count or guidance: unset generator.steps / generator.guidance")
        if d.enabled and d.model is None:
            raise ConfigError("loop.draft with the veo generator needs loop.draft.model (a cheaper Veo model, e.g. "
                              "a -fast one): Veo takes no step count")

    def new_client(self) -> Any:
        types = self._types
        http = types.HttpOptions(base_url=self.base_url, timeout=60_000,
                                 retry_options=types.HttpRetryOptions(attempts=1))  # retries are ours
        if self.key:
            return self._genai.Client(vertexai=True, api_key=self.key, http_options=http)
        if not self._client_opts.get("project"):
            raise ConfigError(f"no key for Veo: set the environment variable {self.key_env} (generator.api_key_env; "
                              "Vertex express mode), or generator.options.project and .location with "
                              "application-default credentials")
        return self._genai.Client(vertexai=True, project=self._client_opts["project"],
                                  location=self._client_opts.get("location", "us-central1"), http_options=http)

    def call(self, fn: Any) -> Any:
        """An SDK call: its failures as Transient (retried), JobGone (404) or BackendError."""
        from google.genai import errors

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return fn()
        except errors.APIError as e:
            code = int(e.code or 0)
            if code in (408, 429) or code >= 500:
                headers = getattr(getattr(e, "response", None), "headers", None) or {}
                raise Transient(f"HTTP {code}" + (" (rate limited)" if code == 429 else ""),
                                retry_after_s(headers.get("retry-after"))) from None
            if code == 404:
                raise JobGone(str(e)) from None
            hint = (f"check the key in ${self.key_env} (generator.api_key_env)" if code in (401, 403) else
                    "check generator.model and generator.options")
            raise BackendError(self.line(f"HTTP {code}: {one_line(e.message or e, 200)}; {hint}")) from None
        except Exception as e:
            if type(e).__module__.startswith(("httpx", "httpcore")):
                raise Transient(f"connection error ({type(e).__name__})") from None
            raise

    def create(self, prompt: str, seed: int, overrides: dict[str, Any], job_log: Any) -> tuple[str, bool, Any]:
        types = self._types
        cfg: dict[str, Any] = {"number_of_videos": 1, "seed": seed, **self.options}
        if self.num_frames and self.fps:
            cfg.setdefault("fps", self.fps)
            cfg.setdefault("duration_seconds", max(1, round(self.num_frames / self.fps)))
        try:
            config = types.GenerateVideosConfig(**cfg)
        except Exception as e:  # pydantic names the field
            raise ConfigError(f"generator.options for Veo: {one_line(e, 200)} (GenerateVideosConfig fields: "
                              "resolution, aspect_ratio, negative_prompt, duration_seconds, ...)") from None
        model = overrides.get("model") or self.model_id

        def start() -> Any:
            try:
                return self.call(lambda: self._client.models.generate_videos(
                    model=model, source=types.GenerateVideosSource(prompt=prompt), config=config))
            except JobGone:
                raise BackendError(self.line(f"model {model!r} not found (HTTP 404): check generator.model")) \
                    from None

        op = self.retrying("starting a Veo operation", start, job_log)
        if not op.name:
            raise BackendError(self.line("the operation has no name (cannot be polled)"))
        return op.name, True, self.as_state(op)

    def as_state(self, op: Any) -> JobState:
        if not op.done:
            return JobState("in_progress", None, raw=op)
        if op.error:
            err = op.error if isinstance(op.error, dict) else {"message": str(op.error)}
            return JobState("failed", None, str(err.get("code", "error")), str(err.get("message", "")), op)
        res = op.result or op.response
        videos = list(getattr(res, "generated_videos", None) or [])
        if not videos:
            reasons = "; ".join(getattr(res, "rai_media_filtered_reasons", None) or []) or "no video returned"
            return JobState("failed", None, "rai_media_filtered", reasons, op)
        return JobState("completed", 100.0, raw=op)

    def state(self, job_id: str, job_log: Any) -> JobState:
        types = self._types
        return self.as_state(self.call(lambda: self._client.operations.get(
            types.GenerateVideosOperation(name=job_id))))

    def download(self, job_id: str, state: JobState, job_log: Any) -> bytes:
        video = (state.raw.result or state.raw.response).generated_videos[0].video
        if video.video_bytes:
            return video.video_bytes
        raise BackendError(self.line(f"operation {job_id} wrote its video to {video.uri} instead of returning it; "
                                     "leave generator.options.output_gcs_uri unset"))
