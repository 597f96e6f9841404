"""Diffusers video families, one small file each. Adding one: a Family subclass in its own file that
names its pipeline classes and what it changes, listed in FAMILIES."""

from __future__ import annotations

from .base import FAMILY_OPTIONS as FAMILY_OPTIONS_KEYS
from .base import Encoder, Family, Settings, binding, signature_defaults
from .cogvideox import CogVideoX
from .cosmos import Cosmos
from .hunyuan import Hunyuan
from .hunyuan15 import Hunyuan15
from .kandinsky5 import Kandinsky5
from .ltx import LTX
from .ltx2 import LTX2
from .mochi import Mochi
from .motif import Motif
from .sana_video import SanaVideo
from .skyreels import SkyReels, SkyReelsForcing
from .wan import Wan

FAMILIES: tuple[Family, ...] = (CogVideoX(), Wan(), LTX(), Hunyuan(), Hunyuan15(), Mochi(), LTX2(), Kandinsky5(),
                                SkyReels(), SkyReelsForcing(), SanaVideo(), Cosmos(), Motif())
GENERIC = Family()
# generator.options keys some family passes to its pipeline call (each family takes only its own)
CALL_OPTIONS: tuple[str, ...] = tuple(sorted({k for f in FAMILIES for k in f.call_options}))


def for_class(class_name: str | None) -> Family:
    """The family serving a pipeline class, or the generic family (its own defaults, no rules known)."""
    for fam in FAMILIES:
        if class_name in fam.classes:
            return fam
    return GENERIC


def by_name(name: str) -> Family | None:
    return next((f for f in FAMILIES if f.name == name), None)


__all__ = ["CALL_OPTIONS", "FAMILIES", "FAMILY_OPTIONS_KEYS", "GENERIC", "Encoder", "Family", "Settings", "binding", "by_name", "for_class",
           "signature_defaults"]
