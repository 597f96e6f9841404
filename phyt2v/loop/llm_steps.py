"""The LLM steps. Each is a template in ``prompts/``, a pydantic output model in ``schemas.py``
and one call to ``run_step``, which climbs the parse ladder:

1. schema-constrained output where the backend supports it;
2. JSON extraction from the reply (fences, prose, trailing commas, truncation) and validation;
3. a bounded retry that shows the model its error.

A reply cut at max_tokens (``finish_reason == "length"``) is never accepted, even when the JSON
repair could close it: it is re-asked once for a shorter answer (within the same retry bound), and
a second cut raises ``ParseError`` naming ``llm.max_tokens``. A reply that still fails raises
``ParseError`` with the raw text. Provider errors (``LLMError``) pass straight through: they are
never retried as parse errors.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import lru_cache
from typing import Any, Callable, TypeVar

from pydantic import BaseModel

from ..errors import ParseError
from ..resources import prompts_dir
from ..roles import LLM, Message, finish_reason
from ..schemas import (CANVAS, PHYSICS_THRESHOLD, Layout, Mismatch, PhysicsCoT, PlannedObject,
                       Refinement, Rules)
from ..store.record import CallLog, RoundRecord
from . import layouts
from .parsing import ReplyError, field_list, parse_reply

M = TypeVar("M", bound=BaseModel)
logger = logging.getLogger("phyt2v.steps")

_SECTION = re.compile(r"^<!--\s*(system|user)\s*-->\s*$", re.M)
_VAR = re.compile(r"\{\{(\w+)\}\}")
TOKENS_PER_WORD = 1.4  # fallback: sentencepiece/BPE tokens per English word; the loop passes the generator's measured rate


@lru_cache(maxsize=None)
def load_template(name: str) -> dict[str, str]:
    path = prompts_dir() / f"{name}.md"
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise ValueError(f"template {path} has no '<!-- user -->' section")
    return sections


def render(name: str, **values: Any) -> list[Message]:
    def fill(text: str) -> str:
        def sub(m: re.Match) -> str:
            if m.group(1) not in values:
                raise KeyError(f"template '{name}' needs a value for '{m.group(1)}'")
            return str(values[m.group(1)])
        return _VAR.sub(sub, text)

    tpl = load_template(name)
    msgs: list[Message] = []
    if tpl.get("system"):
        msgs.append({"role": "system", "content": fill(tpl["system"])})
    msgs.append({"role": "user", "content": fill(tpl["user"])})
    return msgs


def run_step(llm: LLM, step: str, model: type[M], values: dict[str, Any], *, log: CallLog,
             retries: int = 2, max_tokens: int | None = None, note: str = "",
             parse: Callable[[str], Any] | None = None) -> M:
    """``note`` is appended to the user message (e.g. a measured length to fix). ``parse`` replaces
    ``parse_reply(raw, model)`` (it raises ``ReplyError``, shown to the model on a retry; what it returns is
    returned)."""
    messages = render(step, fields=field_list(model), **values)
    if note:
        messages[-1] = {"role": "user", "content": f"{messages[-1]['content']}\n\n{note}"}
    schema = model.model_json_schema() if getattr(llm, "supports_schema", False) else None
    raw, cuts = "", 0
    for attempt in range(retries + 1):
        with log.call("llm", llm, step, {"messages": messages, "schema": bool(schema),
                                          "attempt": attempt + 1}) as entry:
            reply = llm.complete(messages, schema=schema, max_tokens=max_tokens)
            raw = entry["output"] = str(reply)
            parsed = None
            if finish_reason(reply, llm) == "length":  # cut mid-answer: never accepted, even if it parses
                cuts += 1
                problem = entry["parse_error"] = "it was cut off at the length limit (max_tokens)"
            else:
                try:
                    parsed = parse(raw) if parse is not None else parse_reply(raw, model)
                except ReplyError as e:
                    problem = entry["parse_error"] = str(e)
        if parsed is not None:
            return parsed
        if cuts >= 2 or (cuts and attempt == retries):
            raise _cut_error(llm, step, model, raw, max_tokens, cuts)
        fix = "Reply again, much SHORTER, with only a JSON object " if cuts else "Reply again with only a JSON object "
        messages = messages + [
            {"role": "assistant", "content": raw or "(empty reply)"},
            {"role": "user", "content": f"Your reply could not be used: {problem}. {fix}with exactly these "
                                        f"fields:\n{field_list(model)}"},
        ]
    raise ParseError(f"the LLM's {step} reply could not be parsed after {retries + 1} attempts "
                     f"({problem}); expected fields: {', '.join(model.model_fields)}",
                     raw=raw, expected=list(model.model_fields), step=step)


def _cut_error(llm: LLM, step: str, model: type[BaseModel], raw: str, max_tokens: int | None,
               cuts: int) -> ParseError:
    limit = max_tokens or getattr(llm, "max_tokens", None)
    now = f" = {limit}" if isinstance(limit, int) else ""
    bigger = f"--set llm.max_tokens={min(2 * limit, 32768)}" if isinstance(limit, int) else "--set llm.max_tokens=2048"
    times = "twice" if cuts >= 2 else "and no retry was left (loop.parse_retries)"
    return ParseError(f"the LLM's {step} reply was cut off at its token limit (llm.max_tokens{now}) {times}; "
                      f"raise it, e.g. {bigger}", raw=raw, expected=list(model.model_fields), step=step)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {x}" for x in items) if items else "- (none given)"


def budget_values(budget_tokens: int, tokens_per_word: float | None = None) -> dict[str, int]:
    rate = tokens_per_word or TOKENS_PER_WORD
    return {"budget_tokens": budget_tokens, "budget_words": max(8, int(budget_tokens / rate))}


def extract_rules(llm: LLM, prompt: str, *, log: CallLog, retries: int = 2) -> Rules:
    return run_step(llm, "rules", Rules, {"prompt": prompt}, log=log, retries=retries)


def find_mismatch(llm: LLM, *, user_prompt: str, prompt: str, rules: Rules, caption: str,
                  log: CallLog, retries: int = 2, evidence: str = "") -> Mismatch:
    """Step 2; ``evidence`` (the layout check's largest deviations, ``layout_steps.evidence``) follows the
    question when given."""
    values = {"user_prompt": user_prompt, "prompt": prompt, "objects": ", ".join(rules.objects) or "(none)",
              "rules": _bullets(rules.rules), "expected_outcome": rules.expected_outcome,
              "caption": caption.strip() or "(the captioner returned nothing)"}
    return run_step(llm, "mismatch", Mismatch, values, log=log, retries=retries, note=evidence)


def history_text(rounds: list[RoundRecord]) -> str:
    """Earlier rounds' prompts, scores and mismatches, so the refiner does not repeat a failed rewrite."""
    done = [r for r in rounds if r.scores is not None]
    if len(done) < 2:
        return ""
    lines = ["Earlier rounds (prompt -> score, mismatches):"]
    for r in done[:-1]:
        s = r.scores
        mm = "; ".join(r.mismatch.mismatches) if r.mismatch and r.mismatch.mismatches else "none recorded"
        lines.append(f"Round {r.index}: \"{r.prompt}\" -> SA {s.sa:.2f}, PC {s.pc:.2f}, score {s.score:.2f}; "
                     f"mismatches: {mm}")
    return "\n".join(lines) + "\n"


def refine_prompt(llm: LLM, *, user_prompt: str, prompt: str, rules: Rules, mismatch: Mismatch,
                  history: str, budget_tokens: int, log: CallLog, retries: int = 2,
                  tokens_per_word: float | None = None) -> Refinement:
    values = {"user_prompt": user_prompt, "prompt": prompt, "rules": _bullets(rules.rules),
              "expected_outcome": rules.expected_outcome, "mismatches": _bullets(mismatch.mismatches),
              "history": history, **budget_values(budget_tokens, tokens_per_word)}
    return run_step(llm, "refine", Refinement, values, log=log, retries=retries)


def enhance_prompt(llm: LLM, prompt: str, rules: Rules, *, budget_tokens: int, log: CallLog,
                   retries: int = 2, note: str = "", tokens_per_word: float | None = None) -> Refinement:
    values = {"prompt": prompt, "objects": ", ".join(rules.objects) or "(none)", "rules": _bullets(rules.rules),
              "expected_outcome": rules.expected_outcome, **budget_values(budget_tokens, tokens_per_word)}
    return run_step(llm, "enhance", Refinement, values, log=log, retries=retries, note=note)


def physics_cot(llm: LLM, prompt: str, *, log: CallLog, retries: int = 2, max_words: int = 100) -> PhysicsCoT:
    """PhyGDPO's CoT prompt extension (see ``enhancers``). An extended prompt over ``max_words`` gets one re-ask
    with its measured length (a re-ask that fails to parse keeps the first reply), then is trimmed (at a
    sentence end where one is near) with a warning."""
    values = {"prompt": prompt, "max_words": max_words, "threshold": f"{PHYSICS_THRESHOLD:.2f}"}
    cot = run_step(llm, "phygdpo", PhysicsCoT, values, log=log, retries=retries)
    n = len(cot.extended_prompt.split())
    if n <= max_words:
        return cot
    note = (f"Your last extended prompt was {n} words, over the limit of {max_words} words: "
            f"write it again in at most {max_words} words.")
    try:
        cot = run_step(llm, "phygdpo", PhysicsCoT, values, log=log, retries=retries, note=note)
    except ParseError as e:  # the first reply was usable: keep it and trim it rather than fail
        logger.warning(f"the shorter phygdpo reply could not be used ({e}); keeping the first one")
    n = len(cot.extended_prompt.split())
    if n <= max_words:
        return cot
    logger.warning(f"the extended prompt is still {n} words after a re-ask, over the {max_words}-word limit: "
                   f"cut to {max_words} words or fewer")
    return cot.model_copy(update={"extended_prompt": trim_words(cot.extended_prompt, max_words)})


def trim_words(text: str, max_words: int) -> str:
    """``text`` cut to at most ``max_words`` words: at the last sentence end within them when that keeps at least
    half of them, else at a word boundary, ended with a period."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    head = words[:max_words]
    ends = [i for i, w in enumerate(head) if w.rstrip("\"')").endswith((".", "!", "?"))]
    if ends and ends[-1] + 1 >= max_words // 2:
        return " ".join(head[:ends[-1] + 1])
    return " ".join(head).rstrip(",;:-") + "."


def estimate_tokens(text: str) -> int:
    """A video text encoder's token count estimated from words (when no tokenizer is loaded)."""
    return math.ceil(len(text.split()) * TOKENS_PER_WORD)


def as_json(model: BaseModel) -> str:
    return json.dumps(model.model_dump(), ensure_ascii=False)


def plan_layout(llm: LLM, prompt: str, rules: Rules | None = None, *, log: CallLog, retries: int = 2,
                keyframes: int = layouts.KEYFRAMES, per_second: float = layouts.PER_SECOND,
                context: str = "") -> Layout:
    """LVD's stage 1: a dynamic scene layout for ``prompt`` (boxes per object per keyframe, normalised), planned
    with the Step-1 ``rules`` when given. A layout with faults (``layouts.violations``) is re-asked once with
    the faults shown; still faulty, it raises ``ParseError`` naming them. Small overhangs are clipped. The reply
    may use ``layouts.reply_tokens`` tokens (880 for 6 keyframes) where ``llm.max_tokens`` is lower. ``context``
    (the loop's revision: the last layout and how the video departed from it) follows the question."""
    values = {"prompt": prompt, "objects": ", ".join(rules.objects) if rules and rules.objects else "(not given)",
              "rules": _bullets(rules.rules if rules else []), "keyframes": keyframes, "canvas": CANVAS,
              "times": ", ".join(f"{t:g}" for t in layouts.keyframe_times(keyframes, per_second)),
              "object_fields": field_list(PlannedObject)}
    names = layouts.name_choices(prompt, rules.objects if rules else None)
    model = layouts.reply_model(keyframes, names)

    def read(raw: str) -> Layout:
        return layouts.read_plan(raw, keyframes, per_second, names)

    limit = getattr(llm, "max_tokens", None)
    room = max(limit, layouts.reply_tokens(keyframes)) if isinstance(limit, int) else None
    note = context
    for attempt in range(2):
        layout = run_step(llm, "layout", model, values, log=log, retries=retries, parse=read, note=note,
                          max_tokens=room)
        problems = layouts.violations(layout, prompt, keyframes)
        if not problems:
            return layouts.clip(layout)
        logger.info(f"layout attempt {attempt + 1}: {'; '.join(problems)}")
        note = (context + "\n\n" if context else "") + ("Your last layout could not be used:\n" +
                                                          _bullets(problems[:8]) +
                                                          "\nPlan the layout again, fixing these problems.")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise ParseError(f"the LLM's layout is unusable after a re-ask: {problems[0]}{more}",
                     raw=json.dumps(layouts.layout_json(layout), ensure_ascii=False),
                     expected=list(model.model_fields), step="layout")
