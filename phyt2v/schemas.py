"""Pydantic models of the LLM steps' outputs: their field descriptions are part of the prompts. (The run record
written to ``run.json`` is ``store/record.py``.)

Lists and strings carry ``max_length``: it becomes ``maxItems``/``maxLength`` in the JSON schema, so a
schema-constrained small model cannot loop on one field until its token limit; the parser trims
longer values instead of rejecting them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Item = Annotated[str, StringConstraints(max_length=300)]


# ---------------------------------------------------------------- LLM step outputs

class Rules(BaseModel):
    """Step 1: what the video must show and obey."""

    objects: list[Item] = Field(max_length=8, description="the main physical objects in the prompt, as short noun phrases")
    rules: list[Item] = Field(max_length=8, description="the physical laws and constraints the video must obey, each stated "
                                         "concretely for these objects (gravity, collisions, deformation, fluids, ...)")
    expected_outcome: str = Field(max_length=600, description="what a viewer should see happen if the physics is right, "
                                              "in one or two sentences")


class Mismatch(BaseModel):
    """Step 2: where the generated video (as captioned) departs from the prompt and the rules."""

    reasoning: str = Field(max_length=1000, description="step-by-step comparison of the prompt and rules with the caption: "
                                       "which objects and motions appear, which are missing or wrong")
    mismatches: list[Item] = Field(max_length=8, description="each a concrete difference between what should happen and what "
                                              "the caption says happened; an empty list if the video matches")


class Refinement(BaseModel):
    """Step 3: step-back reasoning, then the rewritten video prompt."""

    principle: str = Field(max_length=1000, description="step-back: the general physical principle behind this scene and how "
                                       "it should look on screen")
    prompt: str = Field(min_length=3, max_length=2000, description="the refined text-to-video prompt: describes the scene, the objects and "
                                    "their physically correct motion explicitly, fixing the mismatches")


PHYSICS_THRESHOLD = 0.60  # PhyGDPO's PhyAugPipe: a prompt is "physical" when its physics-richness score reaches this


class PhysicsCoT(BaseModel):
    """PhyGDPO's chain-of-thought prompt extension (its PhyAugPipe, Algorithm 1), one stage per field in order:
    element parsing, vision checking, physics reasoning, physics-richness score, extended prompt."""

    model_config = ConfigDict(str_strip_whitespace=True)

    elements: list[Item] = Field(max_length=12, description="element parsing: the physical entities (with their "
                                 "material in brackets), the actions, the forces and the outcomes the prompt implies, "
                                 "each a short phrase")
    vision_check: str = Field(max_length=800, description="vision checking: which of these elements a camera would "
                              "actually show; name any to drop (invisible, implied only) and any cue that makes the "
                              "scene less physical: camera motion as the main action, a cartoon or game style, a "
                              "static aftermath with no motion")
    physics_reasoning: str = Field(max_length=800, description="physics reasoning: one or two sentences on how the "
                                   "visible entities interact through forces and what results (cause -> effect)")
    physics_score: float = Field(ge=0.0, le=1.0, description="physics richness, a number from 0 to 1: 0.9+ for two or "
                                 "more entities in contact with several forces and outcomes, 0.6-0.9 for a clear force "
                                 "and outcome, below 0.6 when physics is weak or missing, below 0.2 for camera motion, "
                                 "cartoon style or a static scene")
    extended_prompt: str = Field(min_length=3, max_length=1000, description="the user's prompt kept nearly word "
                                 "for word, extended with the cause -> effect from the reasoning, as one paragraph of "
                                 "plain prose; no new objects, no sounds or smells")

    @property
    def physical(self) -> bool:
        return self.physics_score >= PHYSICS_THRESHOLD


# ---------------------------------------------------------------- scene layouts (LVD)

CANVAS = 512  # the LLM plans on LVD's square canvas of 512 x 512 pixels; phyt2v keeps boxes normalised
MAX_OBJECTS = 6  # objects a planned layout may have (LVD's benchmark needs at most 4)


PixelBox = Annotated[list[Annotated[int, Field(ge=0, le=CANVAS)]], Field(min_length=4, max_length=4)]
OVERHANG = CANVAS // 20  # pixels a corner may lie outside the frame in a reply (it is moved onto the edge)


def _tidy_box(b: Any) -> Any:
    """Whole pixels, corners in order (x0 <= x1, y0 <= y1), a small overhang moved onto the frame's edge."""
    if not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)):
        return b
    v = [round(x) for x in b]
    v = [min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])]
    return [min(CANVAS, max(0, x)) if -OVERHANG <= x <= CANVAS + OVERHANG else x for x in v]


class PlannedObject(BaseModel):
    """One object of the layout step's reply: its name and its box in every frame, on a square canvas. The boxes
    are corners, so a schema-constrained LLM cannot put one outside the frame."""

    name: str = Field(min_length=1, max_length=80, description="the object, as a short phrase copied from the "
                      "caption (e.g. 'red ball')")
    boxes: list[PixelBox] = Field(max_length=12, description=f"its box in each frame, in time order: [x0, y0, x1, "
                                  f"y1], the box's top-left and bottom-right corners in pixels of the {CANVAS}x{CANVAS} "
                                  "frame ([0, 0] is the frame's top-left corner); [0, 0, 0, 0] where it is not visible")

    @field_validator("boxes", mode="before")
    @classmethod
    def _tidy(cls, v: Any) -> Any:
        return [_tidy_box(b) for b in v] if isinstance(v, list) else v


class LayoutReply(BaseModel):
    """The layout step's reply, in LVD's terms (a reasoning, boxes over the frames, a background keyword), one
    entry per object: its id is its place in ``objects``. ``loop.layouts.to_layout`` turns it into a
    :class:`Layout`."""

    reasoning: str = Field(max_length=500, description="first, in two or three sentences: how each object moves "
                           "and why (gravity, bounces, perspective), and what that does to its box")
    objects: list[PlannedObject] = Field(max_length=MAX_OBJECTS, description="every object of the caption that the video "
                                         "shows, one entry each (several entries may share a name)")
    background: str = Field(max_length=80, description="one or two words naming the background (e.g. 'garden')")


Box = Annotated[list[float], Field(min_length=4, max_length=4)]


class LayoutObject(BaseModel):
    """One object's box at one keyframe: ``[x0, y0, x1, y1]``, fractions of the frame's width and height from
    its top-left corner (0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1)."""

    id: int = Field(ge=0)
    name: str
    box: Box


class Keyframe(BaseModel):
    t: float = Field(ge=0.0, description="seconds from the start of the video")
    objects: list[LayoutObject] = Field(default_factory=list)


class Layout(BaseModel):
    """A dynamic scene layout (LVD): boxes per object per keyframe, a background keyword and the reasoning."""

    keyframes: list[Keyframe]
    background: str = ""
    reasoning: str = ""

    def positions(self) -> list[float]:
        """Where each keyframe sits in the video, as a fraction of its length: the plan spans the whole video, as in
        LVD (keyframe k at ``t_k / t_last``, whatever the video's duration)."""
        last = max((kf.t for kf in self.keyframes), default=0.0)
        return [kf.t / last if last > 0 else 0.0 for kf in self.keyframes]
