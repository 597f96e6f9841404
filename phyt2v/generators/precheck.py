"""What a generator config is refused for before any weight loads or downloads: options its family does not take,
frames and sides off the family's rule, cache-hook params, and draft settings (``loop.draft``). It runs at
``Refiner`` / ``Batch`` start and in ``phyt2v doctor`` (the backend class's ``check_before_load``), and again as the
backend loads, with the family's defaults and the full step count at hand (``check_loaded``).

The family comes from the model's own files (a tiny or local folder, the hub cache) or the published table
(``paramcount.PUBLISHED_CONFIGS``); a model none of them knows is checked when it loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .families import GENERIC, Family, for_class
from .guidance import blocks_refusal, refusal
from .knobs import cache_params
from .model_index import PipelineIndex, index_before_load
from .shapes import check_family_options, check_shape, check_sides

if TYPE_CHECKING:
    from ..config import Config, DraftConfig


def family_before_load(model: str) -> tuple[Family, PipelineIndex | None]:
    """The family serving ``model`` and what its files (or the table) say, before anything loads."""
    index = index_before_load(model)
    return (for_class(index.class_name) if index is not None else GENERIC), index


def check_before_load(config: "Config", only: str | None = None) -> Family:
    """ConfigError for anything the generator would refuse once loaded that is known now; ``only`` names the one
    family a backend serves (``cogvideox``). Values left to the family's defaults are the family's own, so only the
    values set are checked here (the defaults need the pipeline class: ``check_loaded``)."""
    g = config.generator
    family, index = family_before_load(g.model)
    if only and family.classes and family.name != only:
        raise ConfigError(f"generator.backend {g.backend} needs a {only} pipeline, but {g.model} is "
                          f"{index.class_name if index else family.name}; set generator.backend=diffusers")
    spatial = None
    if family.classes:
        check_family_options(g, family)
        rules = family.rules(index.vae if index else None, index.transformer if index else None)
        check_shape(g, family, rules, {}, g.model)
        spatial = rules[1]
    if g.lora and index is not None and index.class_name:
        check_lora_loader(index.class_name)
    if g.cache is not None:
        cache_params(g.cache, family, g.steps)
    check_draft(config.loop.draft, family, spatial, g.steps, g.model)
    check_guidance(config, family, index)
    return family


def check_guidance(config: "Config", family: Family, index: PipelineIndex | None = None) -> None:
    """``loop.layout: guide`` on a generator that cannot guide (guidance.refusal), with guidance switched off, or
    with ``layout_guidance.blocks`` the transformer does not have (its config's ``num_layers``, when known)."""
    if config.loop.layout != "guide":
        return
    g = config.generator
    if not g.layout_guidance.enabled:
        raise ConfigError("loop.layout=guide needs generator.layout_guidance.enabled=true; set it, or use "
                          "loop.layout=plan to plan and check layouts without guidance")
    cache = g.cache or (config.loop.draft.cache if config.loop.draft.enabled else None)
    why = refusal(family.name if family.classes else None, cache, g.offload)  # an unknown model: checked at load
    if why:
        raise ConfigError(why)
    n = (index.transformer or {}).get("num_layers") if index is not None else None
    if isinstance(n, int):  # the model's config (folder, cache or the published table) says how many blocks
        why = blocks_refusal(g.layout_guidance.blocks, n, f"the {family.name} transformer of {g.model}")
        if why:
            raise ConfigError(why)


def check_lora_loader(class_name: str) -> None:
    """generator.lora on a pipeline class diffusers gives no LoRA loader (HunyuanVideo 1.5, Motif-Video in 0.42)."""
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if cls is not None and not hasattr(cls, "load_lora_weights"):
        raise ConfigError(f"generator.lora: {class_name} has no LoRA loader in diffusers; remove generator.lora or "
                          "use a family that has one")


def check_loaded(gen: Any, config: "Config") -> None:
    """The draft settings against a loaded generator: its full step count and its family's spatial rule."""
    check_draft(config.loop.draft, gen.family, gen.rules[1] if gen.family.classes else None, gen.steps, gen.model_id)


def check_draft(draft: "DraftConfig", family: Family, spatial: int | None, full_steps: int | None, model: str) -> None:
    """``loop.draft`` (when on): fewer steps than a full render, sides on the family's rule, a cache hook's params."""
    if not draft.enabled:
        return
    if draft.steps is not None and full_steps and draft.steps > full_steps:
        raise ConfigError(f"loop.draft.steps {draft.steps} is above the full render's {full_steps} steps: a draft "
                          f"renders fewer; set loop.draft.steps <= {full_steps} or leave it unset (steps_fraction)")
    if spatial:
        check_sides({"height": draft.height, "width": draft.width}, family, spatial, model, prefix="loop.draft.")
    if draft.cache is not None:
        cache_params(draft.cache, family, draft.steps, where="loop.draft.cache")

