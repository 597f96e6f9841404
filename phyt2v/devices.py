"""Device and dtype choice shared by every backend that loads torch weights."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

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


def resolve_model(model: str, *, tiny_kind: str, what: str, example: str, marker: str | None = None) -> str:
    """Where weights load from: 'tiny' -> the tiny random-weight folder of ``tiny_kind``; an existing
    folder -> its absolute path (checked for ``marker`` when given); else a hub id (owner/name)."""
    from pathlib import Path

    from .errors import BackendError

    if model == "tiny":
        from .tiny import tiny_model_dir

        return str(tiny_model_dir(tiny_kind))
    p = Path(model).expanduser()
    if p.exists():
        if marker and not (p / marker).is_file():
            raise BackendError(f"{p} is not a {what} folder (no {marker}); pass the folder that holds {marker}.")
        return str(p.resolve())
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise BackendError(f"{what} path not found: {model}. Pass an existing folder, a hub id such as "
                           f"{example}, or 'tiny'.")
    return model
