"""VideoScore2's prompt and the reading of its reply, as its model card's inference code does it
(``vs2_inference.py`` of TIGER-AI-Lab/VideoScore2, the code the card at huggingface.co/TIGER-Lab/VideoScore2 runs).

The reply holds three integer ratings 1..5 in the card's format (``visual quality: 4; text-to-video alignment: 3,
physical/common-sense consistency: 2``), read by the card's regular expression, plus the model's reasoning. Each
rating's *soft* score is the card's ``ll_based_soft_score_normed``: at the reply token that holds the rating's
digit, the probabilities of the tokens "1".."5"; the most probable digit times its share of their sum (a confident
4 stays near 4, an unsure 4 falls towards 0). Pure functions: torch only for the log-softmax.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from string import Template
from typing import Any

# The card's query, verbatim (its indentation and trailing spaces included).
TEMPLATE = Template("\n".join([
    "",
    "    You are an expert for evaluating AI-generated videos from three dimensions:",
    "    (1) visual quality \u2013 clarity, smoothness, artifacts;",
    "    (2) text-to-video alignment \u2013 fidelity to the prompt;",
    "    (3) physical/common-sense consistency \u2013 naturalness and physics plausibility.",
    "",
    "    Video prompt: $t2v_prompt",
    "",
    "    Please output in this format:",
    "    visual quality: <v_score>; ",
    "    text-to-video alignment: <t_score>, ",
    "    physical/common-sense consistency: <p_score>",
    "    "]))
PATTERN = re.compile(r"visual quality:\s*(\d+).*?text-to-video alignment:\s*(\d+).*?"
                     r"physical/common-sense consistency:\s*(\d+)", re.DOTALL | re.IGNORECASE)
# Our names for the three dimensions -> the label before each rating in the reply.
LABELS = {"visual": "visual quality:", "sa": "text-to-video alignment:", "pc": "physical/common-sense consistency:"}
RATINGS = range(1, 6)


def query(prompt: str) -> str:
    return TEMPLATE.substitute(t2v_prompt=prompt)


@dataclass
class Reading:
    """What a reply says: the integer ratings (None: absent or outside 1..5), the soft scores, the reasoning."""

    ratings: dict[str, int | None]
    soft: dict[str, float | None] = field(default_factory=dict)
    rationale: str = ""

    @property
    def unparseable(self) -> list[str]:
        return [k for k, v in self.ratings.items() if v is None]


def parse_ratings(text: str) -> dict[str, int | None]:
    """The three integer ratings by the card's pattern; a missing block, or a rating outside 1..5, is None."""
    m = PATTERN.search(text or "")
    if not m:
        return {k: None for k in LABELS}
    values = [int(g) for g in m.groups()]
    return {k: (v if v in RATINGS else None) for k, v in zip(LABELS, values)}


def rationale(text: str) -> str:
    """The model's reasoning: the reply without its rating block and without ``<think>`` tags."""
    text = PATTERN.sub(" ", text or "")
    text = re.sub(r"</?think>", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def score_token_index(label: str, decode: Any, ids: list[int]) -> int:
    """The index in ``ids`` (the reply's tokens) of the token that holds the first digit after ``label``; -1 when
    there is none. As the card's ``find_score_token_index_by_prompt`` (the same label pattern on the decoded reply),
    except that the token is the first whose decoded prefix reaches the digit, where the card asks for a prefix that
    ends exactly at it: the same token with Qwen's tokenizer (one token per digit), and still found when a tokenizer
    merges the digit with what follows (the tiny test model's "3;")."""
    text = decode(ids)
    m = re.search(r"(?:\(\d+\)\s*|\n\s*)?" + re.escape(label), text, flags=re.IGNORECASE)
    if not m:
        return -1
    digit = re.search(r"\d", text[m.end():])
    if not digit:
        return -1
    reach = m.end() + digit.start() + 1
    for i in range(len(ids)):
        if len(decode(ids[: i + 1])) >= reach:
            return i
    return -1


def soft_score(rating: int | None, logits: Any, digit_ids: dict[int, int]) -> float | None:
    """The card's ``ll_based_soft_score_normed``: ``logits`` (vocab,) at the rating's token; ``digit_ids`` maps each
    rating 1..5 to its token id (ratings whose digit is not one token are left out, as the card does)."""
    import torch

    if rating is None or logits is None or not digit_ids:
        return None
    logp = torch.log_softmax(logits.float(), dim=-1)
    probs = [(s, float(math.exp(logp[t].item()))) for s, t in sorted(digit_ids.items())]
    total = sum(p for _, p in probs)
    best, top = max(probs, key=lambda sp: sp[1])  # the first of equals, as the card's probs.index(max)
    return round(best * (top / total if total > 0 else 0.0), 4)


def digit_token_ids(tokenizer: Any) -> dict[int, int]:
    """Rating -> token id, for each rating whose digit the tokenizer encodes as one token."""
    out = {}
    for s in RATINGS:
        ids = tokenizer.encode(str(s), add_special_tokens=False)
        if len(ids) == 1:
            out[s] = int(ids[0])
    return out


def read_reply(text: str, ids: list[int] | None = None, step_logits: list | None = None,
               tokenizer: Any = None) -> Reading:
    """Ratings, soft scores (when the generation's per-step logits are given) and the rationale of one reply."""
    reading = Reading(parse_ratings(text), rationale=rationale(text))
    if ids is None or step_logits is None or tokenizer is None:
        return reading
    decode = lambda part: tokenizer.decode(part, skip_special_tokens=False)  # noqa: E731
    digits = digit_token_ids(tokenizer)
    for key, label in LABELS.items():
        i = score_token_index(label, decode, ids)
        logits = step_logits[i] if 0 <= i < len(step_logits) else None
        reading.soft[key] = soft_score(reading.ratings[key], logits, digits)
    return reading


def unit(value: float | None) -> float:
    """A score on the card's 1..5 scale -> [0, 1] by (value - 1) / 4, clipped (a soft score can fall below 1);
    None -> NaN (no score: the caller fails the step, never a silent zero)."""
    if value is None:
        return math.nan
    return min(1.0, max(0.0, (float(value) - 1.0) / 4.0))
