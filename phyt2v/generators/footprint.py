"""What one render will be, before the model loads, for the memory plan's working-memory estimate
(``memplan``: tokens = latent frames x (H / px) x (W / px), times the hidden size): the transformer's hidden size
and the pixels and frames per token from the family's rules on the VAE / transformer configs (a local or cached
folder's, or the published table's), and height, width and frames as configured, else the family's defaults (the
pipeline class's ``__call__`` signature, as the loaded generator reads them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .families import signature_defaults
from .precheck import family_before_load

if TYPE_CHECKING:
    from ..config import GeneratorConfig

SIZE_KEYS = ("height", "width", "num_frames")


def render_shape(g: "GeneratorConfig") -> dict[str, int] | None:
    """``{hidden, pixels_per_token, frames_per_token, height, width, num_frames}``, or None when the model's family
    or its transformer config is not known before it loads."""
    family, index = family_before_load(g.model)
    if not family.classes or index is None:
        return None
    hidden = family.hidden_size(index.transformer)
    frames_per, px = family.token_grid(index.vae, index.transformer)
    size = {k: getattr(g, k) for k in SIZE_KEYS}
    if None in size.values():
        import diffusers

        cls = getattr(diffusers, index.class_name or "", None)
        defaults = family.defaults(signature_defaults(cls), index.transformer) if cls is not None else {}
        size = {k: v or defaults.get(k) for k, v in size.items()}
    if not hidden or None in size.values():
        return None
    return {"hidden": int(hidden), "pixels_per_token": int(px), "frames_per_token": int(frames_per),
            **{k: int(v) for k, v in size.items()}}
