"""Pydantic models of the LLM steps' outputs: their field descriptions are part of the prompts. (The run record
written to ``run.json`` is ``store/record.py``.)

Lists and strings carry ``max_length``: it becomes ``maxItems``/``maxLength`` in the JSON schema, so a
schema-constrained small model cannot loop on one field until its token limit; the parser trims
longer values instead of rejecting them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
