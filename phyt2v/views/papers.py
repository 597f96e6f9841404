"""The papers' published numbers that ``phyt2v reproduce`` sets beside ours, each with where it was read.

Nothing here is estimated or filled in: a cell whose number could not be read from a source is not stored, and
``reproduce`` says so. Every number carries its ``source`` (document, table, row) and ``verified``: True when it
was read in the authors' own publication (paper or repository), False when it comes second-hand (then the
source names the intermediary and the output marks the number "unverified").

What was read, and what could not be (written 2026-12-07, offline, from stored copies of public pages):

- PhyT2V (Xue et al., CVPR 2025, arXiv 2412.00596), Table 1 (VideoPhy prompts, VideoCon-Physics PC/SA per round,
  overall and per states_of_matter): the stored copies of arxiv.org/html/2412.00596v1/v2 and the CVF page were
  readable only up to the introduction, and the repository pittisl/PhyT2V's README holds no table. The overall
  round 1 -> round 4 figures below are those quoted in the project's design guide (GUIDE.md section 1); the
  per-category cells are not stored.
- PhyGDPO (Cai et al., arXiv 2512.24551), VideoPhy-2 AutoEval joint on the short prompts: neither the stored
  arXiv/ar5iv pages (abstract and introduction only) nor the repository caiyuanhao1998/Open-PhyGDPO (READMEs
  without result tables) showed the table: stored without numbers.
- PhyGenBench (Meng et al., arXiv 2410.05363): the leaderboard of the authors' repository OpenGVLab/PhyGenBench,
  README.md (identical in the stored copies at commits 0695f61cde2a and 4ca63e8d7e05). That README links its
  paper as arXiv 2408.02718, which is another paper (MMIU): the PhyGenBench paper is 2410.05363.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PHYT2V_PAPER = ("PhyT2V: LLM-Guided Iterative Self-Refinement for Physics-Grounded Text-to-Video Generation "
                "(Xue, Yin, Yang, Gao; CVPR 2025; arXiv 2412.00596)")
PHYGDPO_PAPER = ("PhyGDPO: Physics-Aware Groupwise Direct Preference Optimization for Physically Consistent "
                 "Text-to-Video Generation (Cai et al.; arXiv 2512.24551)")
PHYGENBENCH_PAPER = ("Towards World Simulator: Crafting Physical Commonsense-Based Benchmark for Video Generation "
                     "(Meng, Liao et al.; arXiv 2410.05363), PhyGenEval scores")

_GUIDE = ("phyt2v design guide (GUIDE.md section 1) quoting PhyT2V's VideoPhy result, {model}, overall, "
          "{round}; not checked against the paper's Table 1 (arXiv 2412.00596), which could not be read offline")
_PHYGENBENCH = ("github.com/OpenGVLab/PhyGenBench README.md, 'Leaderboard' table, row '{row}', column '{col}' "
                "(stored copy at commit 0695f61cde2a)")


@dataclass(frozen=True)
class Number:
    """One published number: row (``overall``, a category, ``hard``), column (e.g. ``round 4 PC``)."""

    row: str
    column: str
    value: float
    source: str
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "source": self.source,
                "verified": self.verified}


@dataclass(frozen=True)
class Column:
    """A column of a paper's table and where ours comes from: ``which`` round of our batch (``first`` or
    ``best``) and the metric key of ``phyt2v metrics`` (``sa``, ``pc``, ``joint``; PhyGenBench: ``score``)."""

    name: str
    which: str
    metric: str


@dataclass(frozen=True)
class PaperTable:
    name: str
    title: str
    paper: str
    benchmark: str                 # the prompt source (``phyt2v batch`` SOURCE)
    kind: str                      # the metric of ``phyt2v metrics``: videophy | videophy2 | phygenbench
    preset: str                    # the preset it implies when none is given
    rounds: int | None             # loop.max_rounds it implies (None: the preset's)
    scorer: str | None             # the scorer its metric needs (None: PhyGenEval, outside phyt2v)
    rows: tuple[str, ...]          # overall first, then categories
    columns: tuple[Column, ...]
    mapping: str                   # how the paper's metric maps to ours, in words
    models: dict[str, tuple[Number, ...]] = field(default_factory=dict)  # paper model -> its numbers
    model_ids: dict[str, str] = field(default_factory=dict)              # hub id (lower case) -> paper model
    default_model: str | None = None
    missing: str = ""              # what could not be found, said plainly to the user
    sets: tuple[str, ...] = ()     # --set overrides applied with the implied preset (the metric's scorer)
    group_column: str | None = None  # the prompt column whose values are the categories

    def numbers(self, model: str | None) -> tuple[Number, ...]:
        return self.models.get(model or "", ())

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "paper": self.paper, "benchmark": self.benchmark,
                "kind": self.kind, "preset": self.preset, "rounds": self.rounds, "scorer": self.scorer,
                "rows": list(self.rows), "columns": [c.name for c in self.columns], "mapping": self.mapping,
                "missing": self.missing or None,
                "models": {m: [n.as_dict() for n in ns] for m, ns in self.models.items()}}


def _phyt2v(model: str, figures: dict[str, float]) -> tuple[Number, ...]:
    """Second-hand overall cells, keyed by column ("round 4 PC"); the source names the round."""
    return tuple(Number("overall", col, v, _GUIDE.format(model=model, round=col.rsplit(" ", 1)[0]), verified=False)
                 for col, v in figures.items())


PHYT2V_TABLE1 = PaperTable(
    name="phyt2v-table1",
    title="PhyT2V Table 1: VideoPhy prompts, CogVideoX-5B, 4 rounds, VideoCon-Physics SA/PC",
    paper=PHYT2V_PAPER, benchmark="videophy", kind="videophy", preset="cogvideox-5b", rounds=4,
    scorer="videocon", group_column="states_of_matter",
    rows=("overall", "solid_solid", "solid_fluid", "fluid_fluid"),
    columns=(Column("round 1 SA", "first", "sa"), Column("round 1 PC", "first", "pc"),
             Column("round 4 SA", "best", "sa"), Column("round 4 PC", "best", "pc")),
    mapping=("The paper's SA/PC are VideoCon-Physics scores in [0, 1]. Ours are `phyt2v metrics videophy`'s: the "
             "share of videos with VideoCon SA (PC) >= 0.5, VideoPhy's definition; whether the paper's cells are "
             "such shares or mean probabilities could not be checked. Round 1 is the user prompt; the paper's "
             "round 4 is set beside our best round (the loop stops early and returns its best round; with "
             "--rounds 4 that is the best of up to 4)."),
    models={
        "CogVideoX-5B": _phyt2v("CogVideoX-5B", {"round 1 SA": 0.48, "round 1 PC": 0.26,
                                                 "round 4 SA": 0.59, "round 4 PC": 0.42}),
        "CogVideoX-2B": _phyt2v("CogVideoX-2B", {"round 1 PC": 0.13, "round 4 PC": 0.29}),
    },
    model_ids={"thudm/cogvideox-5b": "CogVideoX-5B", "thudm/cogvideox-2b": "CogVideoX-2B"},
    default_model="CogVideoX-5B",
    missing=("Only the overall round 1 and round 4 cells are stored, second-hand (the project's design guide "
             "quoting PhyT2V); the paper's Table 1 itself (per category, rounds 2-3) could not be read offline."),
)

PHYGDPO_VIDEOPHY2 = PaperTable(
    name="phygdpo-videophy2",
    title="PhyGDPO: VideoPhy-2 AutoEval joint pass rate on the short prompts",
    paper=PHYGDPO_PAPER, benchmark="videophy2", kind="videophy2", preset="wan2.1-14b-phygdpo", rounds=None,
    scorer="videophy2", group_column="category",
    rows=("overall", "hard", "activity", "interaction"),
    columns=(Column("joint (round 1)", "first", "joint"), Column("joint (best round)", "best", "joint")),
    mapping=("Joint = share of videos with VideoPhy-2 AutoEval SA >= 4 and PC >= 4 (`phyt2v metrics videophy2`), "
             "on the short prompts (the `caption` column). Round 1 is the unrefined prompt, as PhyGDPO generates; "
             "the best round adds the PhyT2V loop on top. Rows: hard = the prompts the file marks is_hard; "
             "activity / interaction = the `category` values naming activities / interactions."),
    sets=("scorer.backend=videophy2", "scorer.model=videophysics/videophy_2_auto"),
    missing=("PhyGDPO's VideoPhy-2 numbers could not be read offline (the stored arXiv pages end before the "
             "results; the repository's READMEs hold no table): the paper column is empty; ours is shown alone."),
)

_PHYGEN_ROWS = ("Mechanics", "Optics", "Thermal", "Material", "Average")
# The leaderboard's rows as printed: (model, size) -> Mechanics, Optics, Thermal, Material, Average.
_PHYGEN_BOARD = {
    ("CogVideoX", "2B"): (0.38, 0.43, 0.34, 0.39, 0.37),
    ("CogVideoX", "5B"): (0.43, 0.55, 0.40, 0.42, 0.45),
    ("Open-Sora V1.2", "1.1B"): (0.43, 0.50, 0.44, 0.37, 0.44),
    ("Lavie", "860M"): (0.40, 0.44, 0.38, 0.32, 0.36),
    ("Vchitect 2.0", "2B"): (0.41, 0.56, 0.44, 0.37, 0.45),
    ("Pika", "-"): (0.35, 0.56, 0.43, 0.39, 0.44),
    ("Gen-3", "-"): (0.45, 0.57, 0.49, 0.51, 0.51),
    ("Kling", "-"): (0.45, 0.58, 0.50, 0.40, 0.49),
}


def _board_label(model: str, size: str) -> str:
    return model if size == "-" else f"{model} {size}"


PHYGENBENCH = PaperTable(
    name="phygenbench",
    title="PhyGenBench leaderboard (PhyGenEval): Mechanics, Optics, Thermal, Material, Average",
    paper=PHYGENBENCH_PAPER, benchmark="phygenbench", kind="phygenbench", preset="cogvideox-5b", rounds=None,
    scorer=None, rows=_PHYGEN_ROWS, columns=(Column("score", "best", "score"),),
    mapping=("PhyGenEval's category score = mean(final) / 3 over its prompts (`phyt2v metrics phygenbench`), from "
             "its per-prompt GPT-4o / open-model judgments, which phyt2v cannot compute offline: run PhyGenEval on "
             "the exported videos and pass its result file with --results. The leaderboard rows are the models "
             "without prompt refinement: compare them with our round 1 (--results first=FILE); --results "
             "best=FILE gives the loop's result."),
    models={_board_label(m, s): tuple(Number(row, "score", v, _PHYGENBENCH.format(row=f"{m} | {s}", col=row),
                                             verified=True) for row, v in zip(_PHYGEN_ROWS, vals))
            for (m, s), vals in _PHYGEN_BOARD.items()},
    model_ids={"thudm/cogvideox-5b": "CogVideoX 5B", "thudm/cogvideox-2b": "CogVideoX 2B"},
    default_model="CogVideoX 5B",
)

TABLES: dict[str, PaperTable] = {t.name: t for t in (PHYT2V_TABLE1, PHYGDPO_VIDEOPHY2, PHYGENBENCH)}


def paper_model(table: PaperTable, generator_model: str) -> str | None:
    """The paper's model that matches the generator (hub id, case-insensitive, "-Diffusers" ignored), else None."""
    key = generator_model.lower().removesuffix("-diffusers")
    return table.model_ids.get(key)
