"""One rule for every LLM rewrite that must fit the video model's token budget (Step 3's refinement, the
``phyt2v enhance`` rewrite): ask; if the rewrite is over the budget, ask once more with its measured length; then
accept what came back (the text encoder cuts the rest) and let the caller warn."""

from __future__ import annotations

from typing import Callable

from ..schemas import Refinement


def over_budget_note(n: int, budget: int, *, approx: bool = False) -> str:
    """What the re-ask tells the LLM about its last rewrite."""
    about = "about " if approx else ""
    return (f"Your last rewrite was {about}{n} tokens, over the {budget}-token limit of the video model: "
            "write a shorter prompt.")


def rewrite_within_budget(ask: Callable[[str], Refinement], count: Callable[[str], int], budget: int, *,
                          approx: bool = False) -> tuple[Refinement, int]:
    """``ask(note)`` -> a rewrite (``note`` is empty the first time); one re-ask when it is over ``budget``
    tokens by ``count``. Returns the last rewrite and its token count (still over: the caller decides)."""
    ref = ask("")
    n = count(ref.prompt)
    if n > budget:
        ref = ask(over_budget_note(n, budget, approx=approx))
        n = count(ref.prompt)
    return ref, n
