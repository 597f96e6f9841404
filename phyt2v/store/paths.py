"""Checks for the places a command writes to (``--out``), before any work is done.

A missing folder is created (with its parents); a file where a folder is needed, a folder where a file
is needed, or a place that cannot be written is one ``InputError`` naming the path and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def _create(folder: Path, given: str) -> None:
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError(f"{given}: {p} is a file, not a folder; pass another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{given}: cannot create the folder {folder} ({err.strerror or err}); "
                         "pass a path you can write to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{given}: the folder {folder} is not writable; pass a path you can write to")


def ensure_dir(folder: str | Path, flag: str = "--out") -> Path:
    """``folder`` exists (created if missing) and is writable."""
    folder = Path(folder).expanduser()
    _create(folder, f"{flag} {folder}")
    return folder


def ensure_file_parent(file: str | Path, flag: str = "--out") -> Path:
    """``file`` can be written: not a folder, its folder exists (created if missing) and is writable."""
    file = Path(file).expanduser()
    if file.is_dir():
        raise InputError(f"{flag} {file} is a folder; pass a file name")
    _create(file.parent, f"{flag} {file}")
    if file.exists() and not os.access(file, os.W_OK):
        raise InputError(f"{flag} {file}: this file is not writable; pass another file name")
    return file
