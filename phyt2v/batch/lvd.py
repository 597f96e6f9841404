"""LVD's benchmark prompts (Lian et al., ICLR 2024): 500 prompts in five tasks of 100, generated in code exactly as
LVD's ``utils/eval/lvd.py`` generates them (same vocabularies, same numpy seeds, same order and repeats), so
``phyt2v batch lvd`` needs no download.

Each item's meta carries what LVD's predicate for it needs (``views/lvd_predicates.py`` applies them):

- ``task``: numeracy | attribution | visibility | dynamic_spatial | sequential;
- ``objects``: the class names the predicate looks for (``car``, ``cat``, ``bird``, ``ball``, ``dog``);
- per task: ``count`` (numeracy), ``colors`` (attribution, one per object), ``appears`` (visibility:
  ``first_half`` or ``second_half``), ``direction`` (dynamic spatial: ``left_to_right`` or ``right_to_left``),
  ``path`` (sequential: three of ``lower left``, ``lower right``, ``upper left``, ``upper right``);
- ``queries``: the detector's text queries for stage 2 (``a photo of a car``), and ``one_box_per_class``
  (stage 2 keeps only the best box of each query, except for numeracy).

Prompts are given as LVD's evaluation reads them (stripped, a final period removed), which are also the keys
of LVD's layout caches. Like LVD, a prompt repeated in its task is a separate item (its own run), with its own
video seed: ``loop.seed`` + the item's index (``meta["seed"]``), so ``loop.seed=0`` gives LVD's first run's seeds and
``loop.seed=500`` its second's (LVD's ``--seed_offset``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..loop.words import article, number_word, plural

PREFIX = "A realistic lively video of a scene"
TOP_DOWN_PREFIX = "A realistic lively video of a top-down viewed scene"
CLASSES = (("moving car", "car"), ("lively cat", "cat"), ("flying bird", "bird"), ("moving ball", "ball"),
           ("walking dog", "dog"))
NAMES = tuple(bare for _, bare in CLASSES)
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray")
DIRECTIONS = (("left", "right", "left_to_right"), ("right", "left", "right_to_left"))
PATHS = (("lower left", "lower right", "upper right"), ("lower left", "upper left", "upper right"),
         ("lower right", "lower left", "upper left"), ("lower right", "upper right", "upper left"))
TASKS = ("numeracy", "attribution", "visibility", "dynamic_spatial", "sequential")


def _query(phrase: str) -> str:
    return f"a photo of {article(phrase)}"


def _item(prompt: str, task: str, objects: list[str], queries: list[str], one_box: bool = True,
          **extra: Any) -> tuple[str, dict[str, Any]]:
    return prompt.strip().rstrip("."), {"task": task, "objects": objects, **extra, "queries": queries,
                                        "one_box_per_class": one_box}


def numeracy(max_num: int = 4, repeat: int = 5) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for n in range(1, max_num + 1):
        for name, bare in CLASSES:
            what = plural(name) if n > 1 else name
            item = _item(f"{PREFIX} with {number_word(n)} {what}", "numeracy", [bare], [_query(bare)],
                         one_box=False, count=n)
            out += [item] * repeat
    return out


def attribution(num_prompts: int = 100) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for ind in range(num_prompts):
        rng = np.random.RandomState(ind)  # LVD: np.random.seed(ind), then two draws from the global state
        c1, c2 = (str(c) for c in rng.choice(COLORS, 2, replace=False))
        o1, o2 = (str(o) for o in rng.choice(NAMES, 2, replace=False))
        out.append(_item(f"{PREFIX} with {article(c1)} {o1} and {article(c2)} {o2}", "attribution", [o1, o2],
                         [_query(f"{c1} {o1}"), _query(f"{c2} {o2}")], colors=[c1, c2]))
    return out


def visibility(repeat: int = 10) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, bare in CLASSES:
        for half in ("second", "first"):
            item = _item(f"{PREFIX} in which {article(name)} appears only in the {half} half of the video",
                         "visibility", [bare], [_query(bare)], appears=f"{half}_half")
            out += [item] * repeat
    return out


def dynamic_spatial(repeat: int = 5, num_pairs: int = 25) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for bare in NAMES:
        for a, b, direction in DIRECTIONS:
            item = _item(f"{PREFIX} with {article(bare)} moving from the {a} to the {b}", "dynamic_spatial",
                         [bare], [_query(bare)], direction=direction)
            out += [item] * repeat
    for ind in range(num_pairs):
        rng = np.random.RandomState(ind)
        for a, b, direction in DIRECTIONS:
            o1, o2 = (str(o) for o in rng.choice(NAMES, 2, replace=False))
            out.append(_item(f"{PREFIX} with {article(o1)} moving from the {a} of {article(o2)} to its {b}",
                             "dynamic_spatial", [o1, o2], [_query(o1), _query(o2)], direction=direction))
    return out


def sequential(repeat: int = 5) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for bare in NAMES:
        for first, second, third in PATHS:
            prompt = (f"{TOP_DOWN_PREFIX} in which {article(bare)} initially on the {first} of the scene. It first "
                      f"moves to the {second} of the scene and then moves to the {third} of the scene.")
            out += [_item(prompt, "sequential", [bare], [_query(bare)], path=[first, second, third])] * repeat
    return out


def lvd_items() -> list[tuple[str, dict[str, Any]]]:
    """The 500 (prompt, meta) items in LVD's order: numeracy, attribution, visibility, dynamic spatial,
    sequential, 100 each. Each meta is a fresh dict, with ``seed``: the item's index, as LVD seeds each video
    (``generate.py``: the prompt's index plus ``--seed_offset``; the batch adds ``loop.seed``)."""
    items = numeracy() + attribution() + visibility() + dynamic_spatial() + sequential()
    return [(p, {**{k: list(v) if isinstance(v, list) else v for k, v in meta.items()}, "seed": i})
            for i, (p, meta) in enumerate(items)]
