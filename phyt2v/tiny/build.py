"""Tiny random-weight models (every video family's pipeline, Qwen2-VL, Qwen2.5-VL, OWL-ViT) for tests and smoke runs,
built once into phyt2v's cache.

They are built from configs with a fixed torch seed, saved with ``save_pretrained`` and loaded back by the
backends through their normal ``from_pretrained`` path. Their outputs are noise: use them to exercise code, never
to judge quality.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..resources import cache_dir
from .cogvideox import build_tiny_cogvideox
from .families import build_tiny_hunyuan, build_tiny_ltx, build_tiny_mochi, build_tiny_wan
from .ltx2 import build_tiny_ltx2
from .owlvit import build_tiny_owlvit
from .qwen25vl import build_tiny_qwen25vl
from .qwen_video import build_tiny_cosmos, build_tiny_hunyuan15, build_tiny_kandinsky5
from .vlm import build_tiny_vlm
from .wan_video import build_tiny_motif, build_tiny_sana_video, build_tiny_skyreels

VERSION = "v2"  # bump when a recipe changes, so stale caches are not reused
_BUILDERS = {"cogvideox": build_tiny_cogvideox, "wan": build_tiny_wan, "ltx": build_tiny_ltx,
             "hunyuan": build_tiny_hunyuan, "vlm": build_tiny_vlm, "qwen2.5-vl": build_tiny_qwen25vl,
             "owlvit": build_tiny_owlvit, "ltx2": build_tiny_ltx2, "kandinsky5": build_tiny_kandinsky5,
             "skyreels": build_tiny_skyreels, "skyreels-df": lambda p: build_tiny_skyreels(p, forcing=True),
             "sana-video": build_tiny_sana_video, "cosmos": build_tiny_cosmos, "motif": build_tiny_motif,
             "hunyuan15": build_tiny_hunyuan15, "mochi": build_tiny_mochi}
KINDS = tuple(_BUILDERS)


def cache_root() -> Path:
    return cache_dir("tiny")


def tiny_model_dir(kind: str, builder: Callable[[Path], object] | None = None) -> Path:
    """Build the tiny model ``kind`` once into the cache and return its folder. ``builder(folder)`` writes a kind
    this package does not know (a backend's own recipe, e.g. the scorers' tiny mPLUG-Owl: this lower layer never
    imports a backend, so the backend passes its recipe here).

    Built in a temporary sibling folder and renamed into place, so concurrent processes never
    see a half-written model (the loser of a race discards its copy).
    """
    build = builder or _BUILDERS.get(kind)
    if build is None:
        raise ValueError(f"unknown tiny model '{kind}'; choose one of {', '.join(KINDS)}")
    final = cache_root() / f"{kind}-{VERSION}"
    marker = final / ".complete"
    if marker.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=final.parent))
    try:
        build(tmp)
        (tmp / ".complete").write_text(VERSION, encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not marker.is_file():  # a stale, incomplete folder: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
