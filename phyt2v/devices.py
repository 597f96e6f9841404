"""Device and dtype choice shared by every backend that loads torch weights."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

DTYPES = ("bfloat16", "float16", "float32")


def resolve_device(device: str | None, key: str) -> str:
    """'auto' -> cuda when a CUDA GPU is visible, else cpu. ``key`` names the config key in errors."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{key} is '{device}' but CUDA is not available (no CUDA GPU visible); "
                          f"set {key}=auto or cpu, or run on a GPU machine.")
    return device


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
