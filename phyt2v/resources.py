"""Where phyt2v's files are: ``prompts/`` and ``configs/`` (a source checkout or an installed wheel), the cache."""

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


def cache_dir(sub: str = "") -> Path:
    """phyt2v's cache folder (tiny models, downloaded benchmark files), or its subfolder ``sub``.

    ``$PHYT2V_CACHE`` if set, else ``$XDG_CACHE_HOME/phyt2v``, else ``~/.cache/phyt2v``. Not created here.
    """
    import os

    base = os.environ.get("PHYT2V_CACHE")
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "phyt2v"
    return root / sub if sub else root
