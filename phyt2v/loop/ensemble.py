"""A scorer ensemble in the loop: loading its members (each placed and swapped on its own), each member's score,
and the best-of-N choice by ``loop.combine``.

- ``mean``: each candidate's score is the weighted mean of the members' scores (each member's score weighs its SA
  and PC by ``loop.sa_weight``/``pc_weight``); the highest wins. It is also every round's recorded score (the stop
  rules and the best round compare rounds by it), with or without an ensemble.
- ``rank``: each member ranks the round's candidates by its own score (1 = best, ties share the mean rank); a
  candidate's rank is the weighted mean of its ranks; the lowest wins (ties: the higher mean score, then the lower
  seed). Scales do not matter, only each member's order: use it for best-of-N when the members score on different
  scales (VideoCon's probabilities bunch near 0.5, VideoPhy-2's and VideoScore2's ratings move in quarters).
  With one video per round there is nothing to rank: the round's score is the mean either way.
Pure functions over the recorded scores, plus ``load_scorer`` (registry and swap placement, no backend import).
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import registry
from ..config.ensemble import is_ensemble, member_config, members, plan_role


def member_score(cfg: Any, sa: float, pc: float) -> float:
    """One member's score from its SA and PC: ``loop.sa_weight``/``pc_weight`` as the round's score."""
    return (cfg.sa_weight * sa + cfg.pc_weight * pc) / (cfg.sa_weight + cfg.pc_weight)


def with_member_scores(cfg: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra["scorers"]`` (an ensemble's members) with each member's ``score`` added."""
    table = extra.get("scorers")
    if isinstance(table, dict):
        for row in table.values():
            sa, pc = (row.get("sa"), row.get("pc")) if isinstance(row, dict) else (None, None)
            if isinstance(sa, (int, float)) and isinstance(pc, (int, float)):
                row["score"] = member_score(cfg, sa, pc)
    return extra


def member_table(scores: Any) -> dict[str, tuple[float, float]]:
    """{member: (its score, its weight)} of one video's scores; a single scorer is one member of weight 1."""
    table = (getattr(scores, "extra", None) or {}).get("scorers")
    if isinstance(table, dict) and table and all(isinstance(r, dict) and "score" in r for r in table.values()):
        return {k: (float(r["score"]), float(r.get("weight", 1.0))) for k, r in table.items()}
    return {"scorer": (float(scores.score), 1.0)}


def ranks(values: Sequence[float]) -> list[float]:
    """Rank of each value, 1 = the highest; equal values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def mean_ranks(tables: Sequence[dict[str, tuple[float, float]]]) -> list[float]:
    """Each candidate's weighted mean rank over the members (tables: one per candidate, as ``member_table``)."""
    names = list(tables[0]) if tables else []
    total = [0.0] * len(tables)
    weight = 0.0
    for name in names:
        w = tables[0][name][1]
        for i, r in enumerate(ranks([t[name][0] for t in tables])):
            total[i] += w * r
        weight += w
    return [t / weight for t in total] if weight else [1.0] * len(tables)


def pick(candidates: Sequence[Any], combine: str) -> Any:
    """The best-of-N candidate (each has ``seed`` and ``scores``: RoundScores) by ``combine``; with ``rank`` each
    candidate's mean rank is recorded in its ``scores.extra["rank"]``."""
    if combine == "rank" and len(candidates) > 1:
        mr = mean_ranks([member_table(c.scores) for c in candidates])
        for c, r in zip(candidates, mr):
            c.scores.extra["rank"] = r
        return min(zip(candidates, mr), key=lambda cr: (cr[1], -cr[0].scores.score, cr[0].seed))[0]
    return max(candidates, key=lambda c: (c.scores.score, -c.seed))


def load_scorer(config: Any, swapper: Any = None) -> Any:
    """The scorer backend of ``config``; an ensemble's members built one at a time, each with the GPU emptied of the
    others first and wrapped as its own swap role (``scorer:<label>``), so they never need to fit together."""
    if not is_ensemble(config.scorer):
        obj = registry.build("scorer", config)
        return swapper.wrap("scorer", obj) if swapper is not None else obj

    def build(label: str, cfg: Any) -> Any:
        if swapper is not None:
            swapper.park_all()
        obj = registry.build("scorer", cfg)
        return swapper.wrap(plan_role(label), obj) if swapper is not None else obj

    parts = members(config.scorer)
    cls = registry.resolve("scorer", config.scorer.backend)
    return cls({label: build(label, member_config(config, m)) for label, m in parts},
               {label: m.weight for label, m in parts})
