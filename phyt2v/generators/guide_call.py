"""One guided pipeline call (``guidance.py`` explains the method): ``prepare`` checks the request before anything
runs, ``Guide.running(kw)`` hooks the guidance into the call's ``callback_on_step_end`` (and UniPC's corrector), and
``Guide.record()`` is what the video's record keeps (``video_info.knobs.layout_guidance``)."""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import ConfigError, InputError
from .guidance import (blocks_refusal, default_blocks, energy, frame_fractions, inside_share, noise_level, refusal,
                       targets)
from .guide_models import ADAPTERS

log = logging.getLogger(__name__)


def prepare(gen: Any, layout: Any, text: str, num_frames: int, cache: Any) -> "Guide | None":
    """The guidance of one ``generate`` call with ``layout``; None when ``generator.layout_guidance.enabled`` is
    off. InputError for a layout that is not a :class:`~phyt2v.schemas.Layout`, ConfigError for a generator that
    cannot guide (its family, a cache hook, offload) or blocks it does not have."""
    from ..schemas import Layout

    if not isinstance(layout, Layout):
        raise InputError(f"layout must be a phyt2v.schemas.Layout (boxes per object per keyframe), not "
                         f"{type(layout).__name__}")
    cfg = gen.cfg.layout_guidance
    if not cfg.enabled:
        log.info("a layout was given but generator.layout_guidance.enabled is off: rendering unguided")
        return None
    why = refusal(gen.family.name, cache, gen.offload)
    if why:
        raise ConfigError(why)
    adapter = ADAPTERS[gen.family.name]
    for model in (m for m in (gen.pipe.transformer, getattr(gen.pipe, "transformer_2", None)) if m is not None):
        n = len(getattr(model, adapter.blocks_attr))
        why = blocks_refusal(cfg.blocks, n, f"the {gen.family.name} transformer")
        if why:
            raise ConfigError(why)
        blocks = cfg.blocks if cfg.blocks is not None else default_blocks(n)
    return Guide(gen.pipe, adapter, cfg, gen.cfg.guidance_checkpointing, gen.family.clean(text), gen.model_limit,
                 layout, num_frames, blocks)


class Guide:
    """LVD's backward guidance inside one pipeline call (see ``guidance.py``)."""

    def __init__(self, pipe: Any, adapter: Any, cfg: Any, checkpointing: bool, text: str, limit: int | None,
                 layout: Any, num_frames: int, blocks: list[int]):
        self.pipe, self.adapter, self.cfg, self.checkpointing = pipe, adapter, cfg, checkpointing
        self.text, self.limit, self.layout = text, limit or 512, layout
        self.num_frames, self.blocks = num_frames, blocks
        self.found: list[Any] | None = None  # resolved at the first guided step, when the token grid is known
        self.missing: list[str] = []
        self.cols: list[int] = []
        self.steps: list[int] = []
        self.energies: list[list[float]] = []

    def record(self) -> dict[str, Any]:
        return {**self.cfg.record(), "blocks": self.blocks, "checkpointing": self.checkpointing,
                "objects": {t.name: len(t.tokens) for t in self.found or []}, "unmatched": self.missing,
                "guided_steps": self.steps, "energy": self.energies}

    @contextmanager
    def running(self, kw: dict[str, Any]) -> Iterator[None]:
        """``kw`` (the pipeline call's arguments) with the guidance chained before its step callback; UniPC's
        corrector off after each guided step for the call."""
        self.steps, self.energies = [], []
        inner = kw.get("callback_on_step_end")

        def step_end(pipe: Any, i: int, t: Any, cb_kw: dict) -> dict:
            cb_kw = self.step_end(pipe, i, cb_kw)
            return inner(pipe, i, t, cb_kw) if inner is not None else cb_kw

        kw["callback_on_step_end"] = step_end
        kw["callback_on_step_end_tensor_inputs"] = ["latents", "prompt_embeds"]
        sched = self.pipe.scheduler
        saved = getattr(sched, "disable_corrector", None)
        if saved is not None:
            sched.disable_corrector = sorted(set(saved) | set(range(self.cfg.steps)))
        try:
            yield
        finally:
            if saved is not None:
                sched.disable_corrector = saved

    def step_end(self, pipe: Any, i: int, cb_kw: dict) -> dict:
        timesteps = pipe.scheduler.timesteps
        if i < self.cfg.steps and i + 1 < len(timesteps):
            cond = self.adapter.cond(cb_kw["prompt_embeds"], cb_kw["latents"].shape[0])
            cb_kw["latents"] = self.guide(pipe, i + 1, timesteps[i + 1], cb_kw["latents"], cond)
        return cb_kw

    def guide(self, pipe: Any, step: int, t: Any, latents: Any, cond: Any) -> Any:
        """The latents entering denoising step ``step`` (0-based) after ``iterations`` gradient steps."""
        import torch

        model = self.adapter.transformer(pipe, t)
        grid = self.resolve(pipe, model, latents)
        if not self.found:
            return latents
        scale = noise_level(pipe.scheduler, step)
        x, values = latents.detach().float(), []
        for _ in range(self.cfg.iterations):
            x.requires_grad_(True)
            with torch.enable_grad(), self.capturing(model) as sink:
                self.adapter.forward(pipe, model, x, t, cond)
                e = energy([sink[b] for b in self.blocks], self.found, self.cols, grid, self.cfg)
                grad = torch.autograd.grad(e.sum() * self.cfg.loss_scale, x)[0]
            values.append(round(float(e.detach().mean()), 6))
            if not math.isfinite(values[-1]):
                log.warning("layout guidance: the energy is not finite at step %d; this step is left unguided", step)
                break
            x = (x - scale * grad).detach()
        self.steps.append(step)
        self.energies.append(values)
        return x.to(latents.dtype)

    def resolve(self, pipe: Any, model: Any, latents: Any) -> tuple[int, int, int]:
        """The token grid of ``latents``; on first use, the objects found in the prompt and their boxes per frame."""
        grid = self.adapter.grid(latents, model)
        if self.found is None:
            fr = frame_fractions(self.num_frames, pipe.vae_scale_factor_temporal, grid[0], self.adapter.patch_t(model))
            self.found, self.missing = targets(self.layout, pipe.tokenizer, self.text, self.limit, fr)
            self.cols = sorted({p for tg in self.found for p in tg.tokens})
            if self.missing:
                log.warning("layout guidance: %s not found in the prompt; not guided", ", ".join(self.missing))
        return grid

    def share(self, pipe: Any, latents: Any, t: Any, cond: Any) -> float:
        """The share of the object tokens' attention inside their boxes for ``latents`` at timestep ``t``, read in
        the blocks guidance reads (no gradient, nothing changed): how well the latents follow the layout."""
        import torch

        model = self.adapter.transformer(pipe, t)
        grid = self.resolve(pipe, model, latents)
        with torch.no_grad(), self.capturing(model) as sink:
            self.adapter.forward(pipe, model, latents, t, cond)
        return inside_share([sink[b] for b in self.blocks], self.found, self.cols, grid)

    @contextmanager
    def capturing(self, model: Any) -> Iterator[dict]:
        """The blocks read store their text attention in the yielded dict; the transformer stops after the last of
        them, its weights frozen, gradient checkpointing on (``checkpointing``); all as it was afterwards."""
        import torch

        sink: dict[int, Any] = {}
        attr = self.adapter.blocks_attr
        blocks = getattr(model, attr)
        attns = {b: self.adapter.attention(blocks[b]) for b in self.blocks}
        saved = {b: a.processor for b, a in attns.items()}
        grads = [(p, p.requires_grad) for p in model.parameters()]
        ckpt = self.checkpointing and not model.gradient_checkpointing
        try:
            for b, a in attns.items():
                a.processor = self.adapter.capture(saved[b], sink, b, self.cols)
            for p, _ in grads:
                p.requires_grad_(False)
            if ckpt:
                model.enable_gradient_checkpointing()
            setattr(model, attr, torch.nn.ModuleList(list(blocks)[:max(self.blocks) + 1]))
            yield sink
        finally:
            setattr(model, attr, blocks)
            if ckpt:
                model.disable_gradient_checkpointing()
            for p, r in grads:
                p.requires_grad_(r)
            for b, a in attns.items():
                a.processor = saved[b]
