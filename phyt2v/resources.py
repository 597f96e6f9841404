"""Locate the ``prompts/`` and ``configs/`` folders in a source checkout or an installed wheel."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def _data_dir(name: str) -> Path:
    for cand in (_PKG / "_data" / name, _PKG.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"phyt2v data folder '{name}' is missing from the installation; reinstall phyt2v")


def prompts_dir() -> Path:
    return _data_dir("prompts")


def configs_dir() -> Path:
    return _data_dir("configs")
