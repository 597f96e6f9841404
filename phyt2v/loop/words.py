"""A little English for layouts and LVD's benchmark: plurals, "a"/"an", small numbers in words.

LVD uses the ``inflect`` package for these; phyt2v does without a new dependency. The rules below give
inflect's answers on LVD's whole vocabulary (checked: the 500 generated prompts equal LVD's) and on common
nouns; unusual words may differ (e.g. some Latin plurals).
"""

from __future__ import annotations

import re

_IRREGULAR = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "foot": "feet", "tooth": "teeth",
    "goose": "geese", "mouse": "mice", "ox": "oxen", "leaf": "leaves", "knife": "knives", "wife": "wives",
    "life": "lives", "wolf": "wolves", "loaf": "loaves", "half": "halves", "shelf": "shelves", "calf": "calves",
    "thief": "thieves", "scarf": "scarves", "die": "dice", "cactus": "cacti", "fungus": "fungi",
}
_SAME = {"sheep", "fish", "deer", "moose", "series", "species", "aircraft", "salmon", "trout", "bison"}
_O_ES = {"potato", "tomato", "hero", "echo", "torpedo", "veto", "mosquito", "volcano"}
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_AN_EXCEPTIONS = ("hour", "honest", "honor", "honour", "heir")
_A_EXCEPTIONS = ("uni", "use", "usu", "uti", "one", "once", "eu", "ewe", "uk", "ura", "uro")


def _keep_case(src: str, out: str) -> str:
    return out.capitalize() if src[:1].isupper() and src[1:].islower() else out


def plural_word(word: str) -> str:
    """The plural of one noun: ``ball`` -> ``balls``, ``box`` -> ``boxes``, ``puppy`` -> ``puppies``."""
    low = word.lower()
    if not low or not low[-1].isalpha():
        return word
    if low in _IRREGULAR:
        return _keep_case(word, _IRREGULAR[low])
    if low in _SAME:
        return word
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    if low in _O_ES:
        return word + "es"
    return word + "s"


def plural(phrase: str) -> str:
    """The plural of a noun phrase: its last word made plural (``moving car`` -> ``moving cars``)."""
    head, _, last = phrase.rpartition(" ")
    return f"{head} {plural_word(last)}" if head else plural_word(last)


def article(phrase: str) -> str:
    """``phrase`` with "a" or "an" in front, by its sound: ``an orange car``, ``a red car``, ``a unicorn``."""
    low = phrase.lower()
    vowel = low[:1] in "aeiou" and not low.startswith(_A_EXCEPTIONS)
    an = vowel or low.startswith(_AN_EXCEPTIONS)
    return f"{'an' if an else 'a'} {phrase}"


def number_word(n: int) -> str:
    """0..20 in words (as LVD writes counts in its prompts); larger numbers as digits."""
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (case-insensitive)."""
    return bool(phrase) and re.search(rf"\b{re.escape(phrase)}\b", text, re.I) is not None


def find_phrase(prompt: str, name: str) -> str | None:
    """LVD's phrase matching (its ``refine_phrase``): the part of ``name`` found in ``prompt`` as whole words,
    trying the name, then the name without numbers, then its last word, then that word's plural; None when
    none is found. (LVD matches case-sensitively; here case is ignored.)"""
    name = " ".join(name.split())
    stripped = name.strip("0123456789 ")
    last = stripped.split(" ")[-1] if stripped else ""
    for cand in (name, stripped, last, plural_word(last) if last else ""):
        if cand and contains_phrase(prompt, cand):
            return cand
    return None


_STOP = set("""a an the this that these those it its it's they them their there here his her he she we you i my our
your of in on at to from with by for into onto over under across through around about above below behind between
near toward towards up down off out and or but nor so then than as is are was were be been being has have had do
does did will would can could should may might must which who whom whose what when where while how very only also
just first then again each every some any all both no not""".split()) | set(_NUMBERS)


def noun_phrases(text: str, longest: int = 3, limit: int = 48) -> list[str]:
    """Candidate object names from ``text``: every run of up to ``longest`` consecutive words with no stop word
    or punctuation between them (``a red ball is thrown`` -> ``red ball``, ``red``, ``ball``, ``thrown``), the
    longer ones of each run first; numbers and count words are left out, as LVD strips them from names."""
    out: dict[str, None] = {}
    for chunk in re.split(r"[^\w\s'-]+", text):
        run: list[str] = []
        for w in [*chunk.split(), ""]:
            if w and w.lower() not in _STOP and not w.isdigit():
                run.append(w)
                continue
            for n in range(min(longest, len(run)), 0, -1):
                for i in range(len(run) - n + 1):
                    out.setdefault(" ".join(run[i:i + n]), None)
            run = []
    return list(out)[:limit]
