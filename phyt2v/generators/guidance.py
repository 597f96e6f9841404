"""LVD's layout guidance (Lian et al., ICLR 2024) on DiT video models: the energy on the text-to-video attention,
its gradient steering the latents of the first denoising steps (classifier-guidance style).

What a guided render does (``DiffusersGenerator.generate(..., layout=Layout)``):

1. **Objects to tokens.** Each object of the layout (by id, its first name) is found in the prompt as the pipeline
   tokenizes it (Wan's text cleaned first): the name as whole words, else its last word (the loop maps names to the
   round's prompt with LVD's phrase matching beforehand); its tokens come from the pipeline's own tokenizer
   (character offsets with a fast tokenizer, else the name's ids searched in the prompt's). Tokens past the
   encoder's limit are cut as the encoder cuts them. An object not found is left out and recorded (``unmatched``).
2. **Keyframes to latent frames.** The plan spans the whole video (``Layout.positions``). Each transformer token
   frame stands for the video frames it encodes (the VAE's temporal factor: latent frame 0 is video frame 0, latent
   frame j >= 1 frames ``t*(j-1)+1 .. t*j``; a temporal patch joins ``patch_t`` latent frames); at its centre an
   object's box is interpolated linearly between the keyframes that show it, and the object counts as present
   where the nearest keyframe shows it. Absent, its box is empty: only the outside term acts (LVD's rule).
3. **The energy** (LVD's ``add_ca_loss_per_attn_map_to_loss``, max-based): for each object, token frame and
   object token, the attention map over the frame's (rows x columns) tokens; inside its box the mean of the
   ``fg_top_p`` share of highest values is pulled up (``1 - mean``, weight ``fg_weight``), outside it the
   ``bg_top_p`` share is pushed down (weight ``bg_weight``), summed over heads and frames, averaged over the
   object's tokens, then averaged over objects and blocks (``blocks``; default the middle third). Where the
   attention is read: ``guide_models.py``.
4. **The update** (LVD's ``latent_backward_guidance``): the energy times ``loss_scale``; ``iterations`` gradient
   steps ``x <- x - s * grad`` on the latents, with ``s`` the noise level of the step they enter: ``sigma_t`` for
   flow-matching schedulers (Wan), ``sqrt(1 - alpha_bar_t)`` for the others (CogVideoX), as LVD scales.

DiT specifics: the pipeline's ``callback_on_step_end`` runs after each denoising step and may replace the latents,
so the latents entering steps 2 .. ``steps``+1 are guided (the first step runs on the seed's noise unguided).
Wan's UniPC scheduler would recompute a guided sample from the previous one in its corrector: the corrector is
off on the step after each guided one (UniPC's ``disable_corrector``), during guided calls only. The guidance pass
runs the conditional branch only, stops after the last block read, with the transformer's weights frozen, and (by
default, ``generator.guidance_checkpointing``) with the transformer's gradient checkpointing, so only one block's
activations are held at a time. Without a layout nothing here runs: the render is the unguided one, bit for bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .guide_models import ADAPTERS

FAMILIES = tuple(ADAPTERS)  # families whose text attention guidance can read


def refusal(family: str | None, cache: Any = None, offload: str | None = None) -> str | None:
    """Why a generator of ``family`` (None: not known yet) with this cache hook and offload cannot guide, or None."""
    if family is not None and family not in ADAPTERS:
        return (f"layout guidance reads the text attention of {' and '.join(FAMILIES)} transformers; the {family} "
                "family has none it can read: use loop.layout=plan, or a Wan or CogVideoX model")
    if cache is not None:
        return ("layout guidance reruns the transformer on guided steps, which a cache hook's state does not "
                "follow: remove generator.cache (and loop.draft.cache) or use loop.layout=plan")
    if offload in ("sequential", "group"):
        return (f"layout guidance needs the transformer's weights on the GPU for its backward pass; generator.offload "
                f"'{offload}' moves them away: use offload none or model")
    return None


# ---------------------------------------------------------------- objects, tokens, frames, boxes

@dataclass
class Target:
    """One object to guide: its name as found in the prompt, its token positions, a box per token frame (None:
    absent)."""

    name: str
    tokens: list[int]
    boxes: list[list[float] | None] = field(default_factory=list)


def find_span(text: str, name: str) -> tuple[int, int] | None:
    """Where ``name`` (else its last word) stands in ``text`` as whole words, case ignored."""
    words = name.split()
    for cand in dict.fromkeys([" ".join(words), words[-1] if words else ""]):
        m = re.search(rf"\b{re.escape(cand)}\b", text, re.I) if cand else None
        if m:
            return m.start(), m.end()
    return None


def phrase_tokens(tokenizer: Any, text: str, span: tuple[int, int], limit: int) -> list[int]:
    """Positions of the tokens of ``text[span]`` in the sequence the encoder reads (special tokens included, cut
    at ``limit``)."""
    kw = {"add_special_tokens": True, "truncation": True, "max_length": limit}
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, return_offsets_mapping=True, **kw)
        a, b = span
        return [i for i, (s, e) in enumerate(enc["offset_mapping"]) if e > s and s < b and e > a]
    ids = tokenizer(text, **kw).input_ids
    for piece in (text[span[0]:span[1]], " " + text[span[0]:span[1]]):
        sub = tokenizer(piece, add_special_tokens=False).input_ids
        for i in range(len(ids) - len(sub) + 1):
            if sub and ids[i:i + len(sub)] == sub:
                return list(range(i, i + len(sub)))
    return []


def frame_fractions(num_frames: int, temporal: int, token_frames: int, patch_t: int) -> list[float]:
    """The centre of each token frame as a fraction of the video (see the module doc, step 2)."""
    last = max(num_frames - 1, 1)

    def centre(j: int) -> float:
        return 0.0 if j == 0 else min(float(last), temporal * j - (temporal - 1) / 2)

    return [sum(centre(m * patch_t + d) for d in range(patch_t)) / patch_t / last for m in range(token_frames)]


def tracks(layout: Any) -> dict[int, tuple[str, list[tuple[int, list[float]]]]]:
    """Each object id: its first name and its (keyframe index, box) where a keyframe shows it."""
    out: dict[int, tuple[str, list[tuple[int, list[float]]]]] = {}
    for k, kf in enumerate(layout.keyframes):
        for o in kf.objects:
            out.setdefault(o.id, (o.name, []))[1].append((k, list(o.box)))
    return out


def box_at(x: float, positions: list[float], shown: list[tuple[int, list[float]]]) -> list[float] | None:
    """The box at fraction ``x``: None where the nearest keyframe does not show the object, else interpolated
    between the keyframes that do."""
    nearest = min(range(len(positions)), key=lambda k: (abs(positions[k] - x), k))
    if not shown or nearest not in {k for k, _ in shown}:
        return None
    pts = sorted((positions[k], box) for k, box in shown)
    if x <= pts[0][0]:
        return pts[0][1]
    for (p0, b0), (p1, b1) in zip(pts, pts[1:]):
        if x <= p1:
            w = 0.0 if p1 == p0 else (x - p0) / (p1 - p0)
            return [u + w * (v - u) for u, v in zip(b0, b1)]
    return pts[-1][1]


def targets(layout: Any, tokenizer: Any, text: str, limit: int,
            fractions: list[float]) -> tuple[list[Target], list[str]]:
    """The objects found in ``text`` (with their tokens and a box per token frame), and the names not found."""
    found, missing = [], []
    positions = layout.positions()
    for _, (name, shown) in sorted(tracks(layout).items()):
        span = find_span(text, name)
        tokens = phrase_tokens(tokenizer, text, span, limit) if span else []
        if not tokens:
            missing.append(name)
            continue
        found.append(Target(text[span[0]:span[1]], tokens, [box_at(x, positions, shown) for x in fractions]))
    return found, missing


def masks(boxes: list[list[float] | None], rows: int, cols: int) -> Any:
    """(frames, rows*cols) 0/1 masks, each box scaled as LVD's ``scale_proportion`` (corner rounded, then size)."""
    import torch

    out = torch.zeros(len(boxes), rows, cols)
    for f, box in enumerate(boxes):
        if box is None:
            continue
        x0, y0 = round(box[0] * cols), round(box[1] * rows)
        x1, y1 = x0 + round((box[2] - box[0]) * cols), y0 + round((box[3] - box[1]) * rows)
        out[f, max(y0, 0):min(y1, rows), max(x0, 0):min(x1, cols)] = 1.0
    return out.flatten(1)


def top_mean(x: Any, k: Any) -> Any:
    """The mean of the ``k[f]`` largest values along the last axis of ``x`` (B, H, F, T, N), per frame f."""
    s = x.sort(dim=-1, descending=True).values.cumsum(dim=-1)
    idx = (k - 1).view(1, 1, -1, 1, 1).expand(*s.shape[:-1], 1)
    return s.gather(-1, idx).squeeze(-1) / k.view(1, 1, -1, 1).to(s.dtype)


def energy(maps: list[Any], found: list[Target], cols: list[int], grid: tuple[int, int, int], cfg: Any) -> Any:
    """LVD's energy per video of the batch (shape (B,)): see the module doc, step 3. ``maps``: per block,
    (B, heads, video tokens, len(cols))."""
    import torch

    f, rows, ncols = grid
    total = 0.0
    for m in maps:
        a = m.reshape(m.shape[0], m.shape[1], f, rows * ncols, m.shape[-1]).transpose(-1, -2)  # B, H, F, P, N
        for tg in found:
            mk = masks(tg.boxes, rows, ncols).to(a.device, a.dtype)
            kf = (mk.sum(-1) * cfg.fg_top_p).long().clamp(min=1)
            kb = ((1 - mk).sum(-1) * cfg.bg_top_p).long().clamp(min=1)
            at = a[:, :, :, [cols.index(p) for p in tg.tokens], :]
            m5 = mk[None, None, :, None, :]
            fg = 1 - top_mean(at * m5, kf)
            bg = top_mean(at * (1 - m5), kb)
            total = total + (fg * cfg.fg_weight + bg * cfg.bg_weight).sum(dim=(1, 2, 3)) / len(tg.tokens)
    return total / (len(found) * len(maps)) if found and maps else torch.zeros(())


def inside_share(maps: list[Any], found: list[Target], cols: list[int], grid: tuple[int, int, int]) -> float:
    """The share of the object tokens' attention that falls inside their boxes, averaged over blocks, heads, the
    frames that show the object, its tokens and the objects: what guidance raises (0..1)."""
    f, rows, ncols = grid
    shares = []
    for m in maps:
        a = m.reshape(m.shape[0], m.shape[1], f, rows * ncols, m.shape[-1]).transpose(-1, -2)  # B, H, F, P, N
        for tg in found:
            mk = masks(tg.boxes, rows, ncols).to(a.device, a.dtype)
            shown = mk.sum(-1) > 0
            at = a[:, :, :, [cols.index(p) for p in tg.tokens], :]
            share = (at * mk[None, None, :, None, :]).sum(-1) / at.sum(-1).clamp(min=1e-12)
            if bool(shown.any()):
                shares.append(float(share[:, :, shown].mean()))
    return sum(shares) / len(shares) if shares else 0.0


# ---------------------------------------------------------------- the guided call

def default_blocks(n: int) -> list[int]:
    """The middle third of ``n`` blocks (at least one)."""
    lo, hi = n // 3, max(n // 3 + 1, math.ceil(2 * n / 3))
    return list(range(lo, min(hi, n)))


def blocks_refusal(blocks: list[int] | None, n: int, where: str) -> str | None:
    """Why ``generator.layout_guidance.blocks`` cannot be read in ``where`` (a transformer of ``n`` blocks), or
    None; unset blocks are always readable (the middle third)."""
    if blocks is None or all(0 <= b < n for b in blocks):
        return None
    return (f"generator.layout_guidance.blocks {blocks}: {where} has blocks 0..{n - 1}; give some of those, or leave "
            "it unset (the middle third)")


def noise_level(scheduler: Any, step: int) -> float:
    """The noise scale of the latents entering ``step``: sigma (flow matching) or sqrt(1 - alpha_bar)."""
    conf = scheduler.config
    flow = (type(scheduler).__name__.startswith("FlowMatch") or conf.get("prediction_type") == "flow_prediction"
            or conf.get("use_flow_sigmas"))
    if flow and getattr(scheduler, "sigmas", None) is not None:
        return float(scheduler.sigmas[step])
    if getattr(scheduler, "alphas_cumprod", None) is not None:
        t = int(scheduler.timesteps[step])
        return float((1 - scheduler.alphas_cumprod[t]) ** 0.5)
    return 1.0
