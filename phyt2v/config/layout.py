"""Layout guidance in the config (``generator.layout_guidance``): LVD's energy on the text-to-video attention, its
gradient steering the first denoising steps (``generators/guidance.py``). The defaults are LVD's benchmark values
(its README's ``--loss_scale 2.5 --max_iter 1 --max_index_step 10 --fg_top_p 0.25 --bg_top_p 0.25 --fg_weight 1.0
--bg_weight 2.0``). The generator guides only when it is given a layout (``loop.layout: guide``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LayoutGuidanceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(True, description="guide when a layout is given (loop.layout: guide needs it on)")
    steps: int = Field(10, ge=1, description="guide the latents of the first N denoising steps")
    iterations: int = Field(1, ge=1, le=20, description="gradient steps on the latents per guided step (LVD: "
                            "1 in its benchmark commands, up to 5)")
    loss_scale: float = Field(2.5, gt=0.0, description="step size of the latent update (the energy's factor)")
    fg_top_p: float = Field(0.25, gt=0.0, le=1.0, description="share of the highest attention values inside a "
                            "box that the energy counts")
    bg_top_p: float = Field(0.25, gt=0.0, le=1.0, description="the same outside the box")
    fg_weight: float = Field(1.0, ge=0.0, description="weight of the inside term")
    bg_weight: float = Field(2.0, ge=0.0, description="weight of the outside term")
    blocks: list[int] | None = Field(None, description="transformer blocks whose text attention is read (0-based); "
                                     "default: the middle third of the blocks")

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("an empty list reads no attention: give block numbers (0-based), or leave it unset for "
                             "the middle third")
        if min(v) < 0:
            raise ValueError(f"block numbers start at 0, got {min(v)}")
        return sorted(set(v))

    def record(self) -> dict:
        """The settings a guided render records (``video_info.knobs.layout_guidance``)."""
        return self.model_dump(exclude={"enabled"})


DEFAULT_GUIDANCE = LayoutGuidanceConfig().model_dump(mode="json")  # hashed only when changed (sections.py)
