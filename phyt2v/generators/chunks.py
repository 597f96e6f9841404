"""Several videos per pipeline call: ``check_seeds`` checks the seeds and their output paths; ``in_chunks``
renders N items k per call, halving a chunk that runs out of CUDA memory (down to one item; out of memory
at one item re-raises). Later chunks keep to the size that last fit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")


def oom_errors() -> tuple[type[BaseException], ...]:
    """torch's out-of-memory exception(s): torch.OutOfMemoryError, which torch.cuda.OutOfMemoryError names too."""
    import torch

    found = {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
    return tuple(e for e in found if e is not None)


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def in_chunks(n: int, size: int, render: Callable[[list[int]], list[T]]) -> list[T]:
    """``render(indices)`` for chunks of ``size`` (0: all n at once) of ``range(n)``; results in index order."""
    limit = n if size <= 0 else min(size, n)
    pending = [list(range(i, min(i + limit, n))) for i in range(0, n, limit)]
    done: dict[int, T] = {}
    oom = oom_errors()
    while pending:
        idx = pending.pop(0)
        if len(idx) > limit:  # an earlier chunk ran out of memory at this size
            pending[0:0] = [idx[i:i + limit] for i in range(0, len(idx), limit)]
            continue
        try:
            out = render(idx)
        except oom:
            if len(idx) == 1:
                raise
            _free()
            half = (len(idx) + 1) // 2
            log.warning("CUDA out of memory rendering %d videos in one call: retrying as %d + %d",
                        len(idx), half, len(idx) - half)
            limit = half
            pending[0:0] = [idx[:half], idx[half:]]
            continue
        done.update(zip(idx, out))
    return [done[i] for i in range(n)]


def check_seeds(seeds: Any, out_paths: Any, batch_size: Any) -> tuple[list[int], list[Path]]:
    """Seeds (distinct ints) and as many distinct output paths; batch_size an int >= 0."""
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise InputError(f"generator: seeds {seeds!r} must be a non-empty list of integers")
    bad = next((s for s in seeds if isinstance(s, bool) or not isinstance(s, int)), None)
    if bad is not None:
        raise InputError(f"generator: seed {bad!r} is not an integer; pass seeds like [42, 43]")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"generator: seeds {list(seeds)} repeat a seed (the same video twice); pass distinct seeds")
    if not isinstance(out_paths, (list, tuple)) or len(out_paths) != len(seeds):
        raise InputError(f"generator: {len(seeds)} seeds need {len(seeds)} out_paths, got {out_paths!r}")
    paths = [Path(p) for p in out_paths]
    if len({p.resolve() for p in paths}) != len(paths):
        raise InputError("generator: out_paths repeat a path (one video would overwrite another); pass one path "
                         "per seed")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise InputError(f"generator: batch_size {batch_size!r} must be an integer >= 0 (0: all seeds in one call)")
    return [int(s) for s in seeds], paths
