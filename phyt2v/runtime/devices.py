"""Device and dtype choice shared by every backend that loads torch weights (where the weights come from:
``hub.py``)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ConfigError

DTYPES = ("bfloat16", "float16", "float32")


def resolve_device(device: str | None, key: str) -> str:
    """'auto' -> the current CUDA device when a GPU is visible, else cpu. ``key`` names the config key in
    errors. 'auto' and 'cuda' get an explicit index (``cuda:N``, the process's current device), so that
    each process of a multi-GPU batch, and diffusers' offload hooks, stay on that process's GPU."""
    import torch

    if device in (None, "", "auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    if device in (None, "", "auto"):
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{key} is '{device}' but CUDA is not available (no CUDA GPU visible); "
                          f"set {key}=auto or cpu, or run on a GPU machine.")
    return device


def cuda_index() -> int | None:
    """The calling thread's current CUDA device (torch keeps one per thread), or None without CUDA. Read it on the
    thread that chose the device (``torch.cuda.set_device`` under ``accelerate launch``) and hand it to worker
    threads with :func:`use_cuda_index`; a process that never imported torch set no device (None)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return int(torch.cuda.current_device())


def use_cuda_index(index: int | None) -> None:
    """Make ``index`` the calling thread's current CUDA device (None: leave it), so that 'auto' resolves there."""
    if index is not None:
        import torch

        torch.cuda.set_device(index)


def resolve_dtype(dtype: str | None, device: str, key: str) -> Any:
    """'auto' -> bfloat16 on CUDA (float16 where bf16 is unsupported), float32 elsewhere."""
    import torch

    if dtype in (None, "", "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"{key} is '{dtype}'; use one of auto, {', '.join(DTYPES)}.")
    return getattr(torch, dtype)


def dtype_kwargs(torch_dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype keyword: ``dtype`` in diffusers and transformers at phyt2v's floors (>= 0.42.1,
    >= 5.25), which deprecate the older ``torch_dtype``."""
    return {"dtype": torch_dtype}
