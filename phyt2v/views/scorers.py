"""Each scorer of a verifier ensemble side by side: which scorers a batch ran (its saved config), and each one's
rows of a round (its own SA and PC from ``extra["scorers"]``) for its own table in ``phyt2v metrics`` and the
report. Rated scorers (1..5 ratings: VideoPhy-2, VideoScore2) get VideoPhy-2's table (mean rating, share >= 4,
joint), the others VideoPhy's (share of SA/PC >= 0.5)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..batch import folder as batchdir

RATED = ("videophy2", "videoscore2")


def kind_of(backend: str) -> str:
    return "videophy2" if backend in RATED else "videophy"


def ensemble_members(config: dict[str, Any] | None) -> dict[str, str]:
    """{label: backend} of the ensemble a saved config ran (``batch.json``'s "config"), {} for a single scorer."""
    from ..config import ScorerConfig
    from ..config.ensemble import is_ensemble, labels

    scorer = (config or {}).get("scorer")
    try:
        section = ScorerConfig.model_validate(scorer) if isinstance(scorer, dict) else None
    except ValueError:
        return {}
    if section is None or not is_ensemble(section):
        return {}
    return dict(zip(labels(section), (m.backend for m in section.ensemble)))


def member_rows(lines: Sequence[dict], label: str, backend: str, which: str | int,
                where: str) -> tuple[list[dict], int]:
    """(rows, excluded) of one member in one round, as ``metrics.batch_rows`` makes them for the combination:
    its ratings for a rated scorer, else its SA and PC; a prompt without them is excluded and counted."""
    rated = backend in RATED
    rows, excluded = [], 0
    for line in lines:
        rnd = batchdir.round_of(line, which)
        m = (((rnd or {}).get("extra") or {}).get("scorers") or {}).get(label) or {}
        sa, pc = (m.get("sa_rating"), m.get("pc_rating")) if rated else (m.get("sa"), m.get("pc"))
        if not (_num(sa) and _num(pc)):
            excluded += 1
            continue
        meta = line.get("meta") if isinstance(line.get("meta"), dict) else {}
        rows.append({**meta, "id": line.get("id"), "prompt": line.get("prompt"), "round": rnd.get("index"),
                     "sa": sa, "pc": pc, "_where": where.format(id=line.get("id")), "_render": batchdir.render_of(rnd)})
    return rows, excluded


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def round_card(scores: Any) -> list[dict[str, Any]]:
    """Each member's SA, PC and score of one round or candidate (``RoundScores``), for the report's round card."""
    table = (getattr(scores, "extra", None) or {}).get("scorers")
    if not isinstance(table, dict):
        return []
    return [{"name": name, "sa": row.get("sa"), "pc": row.get("pc"), "score": row.get("score"),
             "weight": row.get("weight"), "error": row.get("error")}
            for name, row in table.items() if isinstance(row, dict)]
