"""``vlm-judge`` over an OpenAI-compatible vision chat endpoint: the served captioner's (``captioner.backend:
openai``), or ``scorer.base_url``.

The two VideoCon-Physics questions the local judge asks (``SA_QUESTION`` about the user's ORIGINAL prompt,
``PC_QUESTION``), one request each, with the sampled frames and ``logprobs: true, top_logprobs: k, max_tokens: 1``
(``k`` = ``scorer.options.top_logprobs``, default 20: OpenAI's and vLLM's usual maximum). Each score is
P(Yes) / (P(Yes) + P(No)) at the answer's first token, from ``choices[0].logprobs.content[0].top_logprobs``:
P(Yes) sums exp(logprob) over the listed tokens that read "yes" once surrounding whitespace (and a BPE space
marker, ``Ġ`` or ``▁``) is stripped, in any case ("Yes", " Yes", "yes", "YES", ...); P(No) likewise for "no". The
local judge's sigmoid(logit_Yes - logit_No) is the same ratio, so both read the same quantity.

An endpoint that returns no logprobs (many providers' vision models) cannot be scored this way: the first score
fails with a ``LoadError`` naming the fix, and a batch stops on it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import check_options
from ..errors import BackendError, ConfigError, InputError, LoadError
from ..roles import Scores
from .judge_questions import PC_QUESTION, SA_QUESTION

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_TOP_LOGPROBS = 20
OPTIONS = ("top_logprobs", "video")
SPACE_MARKERS = "\u0120\u2581"  # Ġ (byte-level BPE), ▁ (SentencePiece)


def answer_word(token: Any) -> str:
    """The word a listed token stands for: stripped of whitespace and BPE space markers, lower case."""
    return str(token).strip().strip(SPACE_MARKERS).strip().lower()


def yes_no_mass(top: list[dict[str, Any]]) -> tuple[float, float]:
    """(P(Yes), P(No)) summed over the variants of each word among ``top`` (``{"token", "logprob"}`` items)."""
    yes = no = 0.0
    for item in top:
        if not isinstance(item, dict) or not isinstance(item.get("logprob"), (int, float)):
            continue
        word = answer_word(item.get("token", ""))
        p = math.exp(float(item["logprob"]))
        if word == "yes":
            yes += p
        elif word == "no":
            no += p
    return yes, no


class ServedJudgeScorer:
    """``score(video, prompt) -> Scores(sa, pc, extra={"sa_p_yes", "sa_p_no", "pc_p_yes", "pc_p_no",
    "sa_logit_diff", "pc_logit_diff"})`` (a logit difference only where both words were listed)."""

    backend = "vlm-judge"
    quantization = "none"  # the model runs on the endpoint's server

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 num_frames: int = 8, frame_size: int = 448, top_logprobs: int = DEFAULT_TOP_LOGPROBS,
                 video: bool = False, timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0):
        from ..vlm.served import ServedVLM

        if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or not 2 <= top_logprobs <= 20:
            raise ConfigError(f"scorer.options.top_logprobs must be an integer from 2 to 20, got {top_logprobs!r}")
        self.client = ServedVLM(role="scorer", model=model, base_url=base_url, api_key_env=api_key_env,
                                timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s)
        self.model_id = model
        self.base_url = self.client.base_url
        self.num_frames, self.frame_size, self.top_logprobs, self.video = num_frames, frame_size, top_logprobs, video

    @classmethod
    def from_config(cls, config: "Config") -> "ServedJudgeScorer":
        from ..runtime.endpoints import judge_endpoint
        from ..vlm.served import video_option

        s = config.scorer
        if s.quantization != "none":
            raise ConfigError(f"scorer.quantization={s.quantization} does not apply to vlm-judge over an endpoint "
                              "(the model runs on the endpoint's server; quantize it there); set "
                              "scorer.quantization=none.")
        opts = check_options("scorer", "vlm-judge", s.options, OPTIONS)
        ep = judge_endpoint(config)
        return cls(ep.model or "", base_url=ep.base_url, api_key_env=ep.key_env, num_frames=s.num_frames or 8,
                   frame_size=s.frame_size, top_logprobs=opts.get("top_logprobs", DEFAULT_TOP_LOGPROBS),
                   video=video_option("scorer", opts), timeout_s=s.timeout_s, max_retries=s.max_retries)

    def __repr__(self) -> str:
        return f"ServedJudgeScorer(model_id={self.model_id!r}, base_url={self.base_url!r})"

    def p_yes(self, parts: list[dict[str, Any]], question: str) -> tuple[float, float]:
        """(P(Yes), P(No)) of the first answer token to ``question`` about the frames in ``parts``."""
        data = self.client.chat([*parts, {"type": "text", "text": question}], max_tokens=1, logprobs=True,
                                top_logprobs=self.top_logprobs)
        logprobs = data["choices"][0].get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        top = content[0].get("top_logprobs") if isinstance(content, list) and content and \
            isinstance(content[0], dict) else None
        if not isinstance(top, list) or not top:
            raise LoadError(self.client.fail_line(
                "the reply has no logprobs (choices[0].logprobs.content[0].top_logprobs)", 1,
                "vlm-judge over an endpoint reads P(Yes) from them: serve the model with a server that returns "
                "logprobs (e.g. vLLM), or choose another scorer (--set scorer.backend=videocon)"))
        yes, no = yes_no_mass(top)
        if yes + no <= 0.0:
            listed = ", ".join(repr(str(t.get("token"))) for t in top[:8] if isinstance(t, dict))
            raise BackendError(self.client.fail_line(
                f"neither Yes nor No is among the answer's top {len(top)} tokens ({listed})", 1,
                "the model does not answer the judge's yes/no question: use an instruction-tuned VLM"))
        return yes, no

    def score(self, video: Path, prompt: str) -> Scores:
        from ..vlm.served import frame_parts

        if not prompt or not prompt.strip():
            raise InputError("vlm-judge: empty prompt; pass the user's original prompt for SA")
        parts = frame_parts(video, self.num_frames, self.frame_size, as_video=self.video)
        extra: dict[str, Any] = {}
        out = []
        for name, question in (("sa", SA_QUESTION.format(prompt=prompt.strip())), ("pc", PC_QUESTION)):
            yes, no = self.p_yes(parts, question)
            extra[f"{name}_p_yes"], extra[f"{name}_p_no"] = yes, no
            if yes > 0 and no > 0:
                extra[f"{name}_logit_diff"] = math.log(yes) - math.log(no)
            out.append(yes / (yes + no))
        return Scores(sa=out[0], pc=out[1], extra=extra)
