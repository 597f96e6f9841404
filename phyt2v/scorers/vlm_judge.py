"""The captioner's VLM asked the VideoCon-Physics questions; P(Yes) read from next-token logits.

SA: ``Does this video entail the description: "{prompt}"?`` (prompt = the user's ORIGINAL prompt);
PC: ``Does this video follow the physical laws?``. Each score is P(Yes) / (P(Yes) + P(No)) at the
first answer token = sigmoid(logit_Yes - logit_No). Not the VideoPhy metric itself (that is
``videocon``); a cheap stand-in that shares one model copy with the captioner. When the captioner is served
(``captioner.backend: openai``) or ``scorer.base_url`` is set, the same questions go to that endpoint and the
scores come from its logprobs (``served_judge.py``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import check_options
from ..errors import BackendError, InputError
from ..roles import Scores
from .judge_questions import PC_QUESTION, SA_QUESTION

__all__ = ["PC_QUESTION", "SA_QUESTION", "VLMJudgeScorer", "answer_token_id", "sigmoid"]

if TYPE_CHECKING:
    from ..config import Config


def answer_token_id(tokenizer: Any, word: str) -> int:
    """The id of ``word`` as one token (as the answer's first token), or a clear error."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
        raise BackendError(f"the VLM's tokenizer encodes '{word}' as {ids}, not as one known token; "
                           "the vlm-judge scorer needs single-token Yes/No answers (use a Qwen-VL model).")
    return int(ids[0])


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class VLMJudgeScorer:
    """``score(video, prompt) -> Scores(sa, pc, extra={"sa_logit_diff", "pc_logit_diff"})``."""

    backend = "vlm-judge"
    quantization_path = "transformers"
    # shares the captioner's copy, or its endpoint when the captioner is served (registry key)
    reads_config = {"captioner": ("model", "device", "dtype", "quantization", "backend", "base_url", "api_key_env")}

    def __init__(self, model: str = "Qwen/Qwen2.5-VL-7B-Instruct", *, num_frames: int = 8,
                 frame_size: int = 448, device: str = "auto", dtype: str = "auto", quantization: str = "none"):
        from ..vlm.runtime import get_vlm, tokenizer_of

        self.model_id = model
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.model, self.processor = get_vlm(model, device, dtype, quantization)
        self.quantization = quantization  # get_vlm applied it or raised (run.json's scorer_quantized)
        tok = tokenizer_of(self.processor)
        self.yes_id = answer_token_id(tok, "Yes")
        self.no_id = answer_token_id(tok, "No")

    @classmethod
    def from_config(cls, config: "Config") -> Any:
        """The local judge; over an endpoint (the captioner is served, or scorer.base_url is set) the served one."""
        from ..runtime.endpoints import judge_served

        if judge_served(config):
            from .served_judge import ServedJudgeScorer

            return ServedJudgeScorer.from_config(config)
        s, c = config.scorer, config.captioner
        check_options("scorer", "vlm-judge", s.options)
        if s.model in (None, c.model):  # share the captioner's copy: same path, device, dtype and quantization
            from ..runtime.quant import check_shared

            check_shared("scorer", s.quantization, c.quantization)
            return cls(c.model, num_frames=s.num_frames or 8, frame_size=s.frame_size,
                       device=c.device if s.device == "auto" else s.device,
                       dtype=c.dtype if s.dtype == "auto" else s.dtype, quantization=c.quantization)
        return cls(s.model, num_frames=s.num_frames or 8, frame_size=s.frame_size, device=s.device, dtype=s.dtype,
                   quantization=s.quantization)

    def logit_diffs(self, frames: list, questions: list[str]) -> list[float]:
        """logit(Yes) - logit(No) for the first token of the answer to each question; the frames go
        through the vision tower once, and each question reuses their embeddings."""
        import torch

        from ..vlm.runtime import build_inputs, encode_images, with_image_embeds

        out = []
        with torch.inference_mode():
            images = None
            for question in questions:
                inputs = build_inputs(self.model, self.processor, frames, question)
                if "pixel_values" in inputs:
                    if images is None:
                        images = encode_images(self.model, inputs)
                    inputs = with_image_embeds(self.model, inputs, images)
                logits = self.model(**inputs).logits[0, -1].float()
                out.append(float(logits[self.yes_id] - logits[self.no_id]))
        return out

    def score(self, video: Path, prompt: str) -> Scores:
        from ..vlm.runtime import video_frames

        if not prompt or not prompt.strip():
            raise InputError("vlm-judge: empty prompt; pass the user's original prompt for SA")
        frames = video_frames(video, self.num_frames, self.frame_size)
        sa, pc = self.logit_diffs(frames, [SA_QUESTION.format(prompt=prompt.strip()), PC_QUESTION])
        return Scores(sa=sigmoid(sa), pc=sigmoid(pc), extra={"sa_logit_diff": sa, "pc_logit_diff": pc})
