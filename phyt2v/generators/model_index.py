"""Where a pipeline's folder is (``resolve_model``: tiny, a local folder or a hub id), and what it says about itself
before any weight loads: its pipeline class (model_index.json
``_class_name``) and the VAE / transformer configs the frame and size rules read, through ``runtime.hub.read_json``
(a local folder, or the local hub cache; never a download)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..runtime.hub import read_json
from ..runtime.hub import resolve_model as _resolve

TINY = {"tiny-wan": "wan", "tiny-ltx": "ltx", "tiny-hunyuan": "hunyuan", "tiny-cogvideox": "cogvideox"}


@dataclass
class PipelineIndex:
    class_name: str | None
    vae: dict[str, Any] | None = None
    transformer: dict[str, Any] | None = None
    components: dict[str, Any] = field(default_factory=dict)


def read_index(model: str) -> PipelineIndex | None:
    """The pipeline's model_index.json and component configs, or None when not on this machine."""
    index = read_json(model, "model_index.json")
    if index is None:
        return None
    return PipelineIndex(class_name=index.get("_class_name"),
                         vae=read_json(model, "vae/config.json"),
                         transformer=read_json(model, "transformer/config.json"),
                         components={k: v for k, v in index.items() if not k.startswith("_")})


def resolve_model(model: str, default_tiny: str = "cogvideox") -> str:
    """'tiny' / 'tiny-<family>' -> a tiny pipeline folder; an existing folder -> its path; else a hub id."""
    kind = TINY.get(model, default_tiny if model == "tiny" else None)
    if kind is not None:
        model = "tiny"
    return _resolve(model, tiny_kind=kind or default_tiny, what="generator model",
                    example="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", marker="model_index.json")
