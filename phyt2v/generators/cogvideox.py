"""``generator.backend: cogvideox``: the diffusers backend held to CogVideoX with the paper's settings
(DPM scheduler with trailing spacing, dynamic CFG, guidance 6, 50 steps, 8 fps, 226 tokens; all of them
come from ``families/cogvideox.py`` and the pipeline). Kept so configs naming it keep working."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .diffusers_gen import DiffusersGenerator
from .model_index import resolve_model as _resolve

DEFAULT_MODEL = "THUDM/CogVideoX-5b"


def resolve_model(model: str) -> str:
    return _resolve(model, "cogvideox")


class CogVideoXGenerator(DiffusersGenerator):
    backend = "cogvideox"
    pipeline_class, label = "CogVideoXPipeline", "CogVideoX"
    only_family = "cogvideox"

    def __init__(self, model: str = DEFAULT_MODEL, **kw: Any):
        super().__init__(model, **kw)
        if self.family.name != "cogvideox":
            raise ConfigError(f"generator.backend cogvideox needs a CogVideoX pipeline, but {model} is "
                              f"{type(self.pipe).__name__}; set generator.backend=diffusers")
