"""Prompt enhancers: ways to make a user's prompt physics-aware before any video is made.

- ``phyt2v``: PhyT2V's Step 1 (rules) + one step-back rewrite (``Refiner.enhance``).
- ``phygdpo``: PhyGDPO's chain-of-thought prompt extension, :func:`phygdpo_enhance`.

What ``phygdpo`` follows (read for facts, written here in our own words):

- PhyGDPO paper (Cai et al., arXiv 2512.24551), Sec. 3 "PhyAugPipe", Algorithm 1: a VLM/LLM filters
  text-video pairs with a chain of thought: element parsing (entities, actions, forces, outcomes) ->
  vision checking (keep what the frames show, drop hallucinated elements) -> physics reasoning (a short
  causal explanation) -> a physics-richness score in [0, 1], labelled physical at >= 0.60 -> an extended
  prompt that adds the causal physics; pairs under the threshold are dropped.
- Open-PhyGDPO, ``PhyAugPipe/prompt_filter_deepseek.md`` (the text-only LLM pass): the parse fields, the
  1-2 sentence reason, the extended prompt of at most 100 words with no new objects and no non-visual
  senses, the score bands (0.90+ multi-entity contact with several forces and outcomes; 0.60-0.74 one clear
  force and outcome; penalties for camera motion, cartoon/game styles and static aftermath) and the 0.60
  label; ``PhyAugPipe/prompts_filter_qwen.md`` (the VLM pass) for the vision check against frames.

We have no video at this point, so our vision check asks what a camera would actually show (the
text-only form of the paper's check against frames); the stages are one LLM call with one typed reply
(``schemas.PhysicsCoT``, template ``prompts/phygdpo.md``), parsed through ``steps.run_step``'s ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..schemas import PhysicsCoT, Refinement, Rules
from ..store.record import CallLog
from . import llm_steps as steps
from .budget import rewrite_within_budget
from .run import Host, validate_prompt

METHODS = ("phyt2v", "phygdpo")
MAX_WORDS = 100  # PhyGDPO's limit on the extended prompt


def phygdpo_enhance(llm: Any, prompt: str, *, log: CallLog, retries: int = 2) -> PhysicsCoT:
    """PhyGDPO's CoT extension of ``prompt``: its elements, vision check, reasoning, physics-richness score
    (``.physical`` at >= 0.60) and an extended prompt of at most 100 words. One LLM call (more on a re-ask).

    Raises InputError for an empty prompt, ParseError when the LLM's reply cannot be used after ``retries``."""
    return steps.physics_cot(llm, validate_prompt(prompt), log=log, retries=retries, max_words=MAX_WORDS)


def check_method(method: str) -> str:
    """``method`` if it is one of METHODS, else an InputError naming the choices."""
    if method not in METHODS:
        raise InputError(f"unknown enhance method '{method}'; choose one of: {', '.join(METHODS)} "
                         f"(e.g. --method phygdpo)")
    return method


@dataclass
class EnhanceResult:
    prompt: str
    rules: Rules
    refinement: Refinement
    calls: CallLog


def phyt2v_enhance(refiner: Host, prompt: str) -> EnhanceResult:
    """``phyt2v enhance``: Step 1 + one step-back rewrite with the refiner's LLM, no video (for closed video
    models); the rewrite fits the generator's token budget (one re-ask with the measured length, then a warning)."""
    prompt = validate_prompt(prompt)
    calls = CallLog(None)
    retries = refiner.config.loop.parse_retries
    llm = refiner.backend("llm")
    rules = steps.extract_rules(llm, prompt, log=calls, retries=retries)
    budget, gen = refiner.token_budget(), refiner.loaded("generator")
    count = gen.count_tokens if gen is not None else steps.estimate_tokens  # no generator: from words
    tpw = refiner.tokens_per_word()

    def ask(note: str) -> Refinement:
        return steps.enhance_prompt(llm, prompt, rules, budget_tokens=budget, log=calls, retries=retries,
                                    note=note, tokens_per_word=tpw)

    ref, n = rewrite_within_budget(ask, count, budget, approx=True)
    if n > budget:
        refiner.warn(f"the enhanced prompt is about {n} tokens, over the video model's {budget}-token "
                     "budget: its text encoder will cut the end")
    return EnhanceResult(prompt=prompt, rules=rules, refinement=ref, calls=calls)
