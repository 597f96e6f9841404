"""Tiny random-weight models (CogVideoX, Wan, LTX-Video and HunyuanVideo pipelines, Qwen2-VL, OWL-ViT) for tests and smoke
runs, built once into phyt2v's cache.

They are built from configs with a fixed torch seed, saved with ``save_pretrained`` and loaded back by the
backends through their normal ``from_pretrained`` path. Their outputs are noise: use them to exercise code, never
to judge quality.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..resources import cache_dir
from .cogvideox import build_tiny_cogvideox
from .families import build_tiny_hunyuan, build_tiny_ltx, build_tiny_wan
from .owlvit import build_tiny_owlvit
from .vlm import build_tiny_vlm

VERSION = "v2"  # bump when a recipe changes, so stale caches are not reused
KINDS = ("cogvideox", "wan", "ltx", "hunyuan", "vlm", "owlvit")


_BUILDERS = {"cogvideox": build_tiny_cogvideox, "wan": build_tiny_wan, "ltx": build_tiny_ltx,
             "hunyuan": build_tiny_hunyuan, "vlm": build_tiny_vlm, "owlvit": build_tiny_owlvit}


def cache_root() -> Path:
    return cache_dir("tiny")


def tiny_model_dir(kind: str) -> Path:
    """Build the tiny model ``kind`` once into the cache and return its folder.

    Built in a temporary sibling folder and renamed into place, so concurrent processes never
    see a half-written model (the loser of a race discards its copy).
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny model '{kind}'; choose one of {', '.join(KINDS)}")
    final = cache_root() / f"{kind}-{VERSION}"
    marker = final / ".complete"
    if marker.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=final.parent))
    try:
        _BUILDERS[kind](tmp)
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
