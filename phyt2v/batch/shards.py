"""Shards of a batch: ``--shard i/n`` by hand, or one shard per process under ``accelerate launch`` / ``torchrun``.
Shard i takes prompts i, i+n, i+2n, ... and writes its own results file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    distributed: bool = False  # launched as one of several processes (accelerate / torchrun)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: list[Any]) -> list[Any]:
        return items[self.index::self.count]


def parse_shard(text: str) -> Shard:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard '{text}' must look like i/n, e.g. --shard 0/4 for the first of 4 shards") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard '{text}': need 0 <= i < n (shards are numbered from 0), e.g. 0/{max(n, 2)}")
    return Shard(i, n)


def launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def distributed_shard() -> tuple[Shard, Any]:
    """This process's shard under ``accelerate launch`` / ``torchrun`` (accelerate's PartialState).
    Each process is pinned to its own GPU; on a machine without CUDA the processes use gloo on CPU."""
    import torch
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    state = PartialState(cpu=not cuda)
    if cuda:
        torch.cuda.set_device(state.local_process_index)
    return Shard(state.process_index, state.num_processes, distributed=True), state
