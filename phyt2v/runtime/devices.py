"""Device and dtype choice shared by every backend that loads torch weights."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import BackendError, ConfigError

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


def dtype_kwargs(torch_dtype: Any, library: str) -> dict[str, Any]:
    """``from_pretrained``'s dtype keyword for the installed ``library`` ("transformers" or "diffusers"):
    ``dtype`` where it exists (transformers >= 4.56; diffusers with ``_resolve_dtype``), else the older
    ``torch_dtype`` (the newer releases deprecate it)."""
    if library == "diffusers":
        from diffusers.pipelines import pipeline_utils

        new = hasattr(pipeline_utils, "_resolve_dtype")
    else:
        import transformers

        major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
        new = (major, minor) >= (4, 56)
    return {"dtype" if new else "torch_dtype": torch_dtype}


def resolve_model(model: str, *, tiny_kind: str, what: str, example: str, marker: str | None = None,
                  key: str | None = None) -> str:
    """Where weights load from: 'tiny' -> the tiny random-weight folder of ``tiny_kind``; an existing
    folder -> its absolute path (checked for ``marker`` when given); else a hub id (owner/name), checked
    to be cached or downloadable (``check_hub_model``); ``key`` is the config key that names the model."""

    if model == "tiny":
        from ..tiny import tiny_model_dir

        return str(tiny_model_dir(tiny_kind))
    p = Path(model).expanduser()
    if p.exists():
        if marker and not (p / marker).is_file():
            raise BackendError(f"{p} is not a {what} folder (no {marker}); pass the folder that holds {marker}.")
        return str(p.resolve())
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise BackendError(f"{what} path not found: {model}. Pass an existing folder, a hub id such as "
                           f"{example}, or 'tiny'.")
    check_hub_model(model, what, key)
    return model


_TRUE = ("1", "on", "yes", "true")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: huggingface_hub will not use the network."""
    return any((os.environ.get(k) or "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (as huggingface_hub does at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def hub_cached(model_id: str) -> bool:
    """A snapshot of the hub model ``owner/name`` is in the local Hugging Face cache."""
    snapshots = hub_cache_dir() / f"models--{model_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(s.is_dir() and any(s.iterdir()) for s in snapshots.iterdir())


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub's host cannot be reached (a DNS failure, a refused or timed-out connection), or None.

    Skipped (None) behind a proxy, where a direct connection says nothing."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"{url.hostname}:{port}: {err.strerror or type(err).__name__}"
    return None


def check_hub_model(model_id: str, what: str, key: str | None = None) -> None:
    """Fail at once, not after minutes of hub retries, when the hub id ``model_id`` can neither come
    from the local cache nor be downloaded. ``key`` is the config key that names the model."""
    if hub_cached(model_id):
        return
    fix = (f"download it first with `hf download {model_id}` (the hf command comes with huggingface_hub), "
           + (f"or pass a local folder with --set {key}=PATH" if key else "or pass a local folder instead"))
    if hub_offline():
        raise BackendError(f"cannot fetch {what} '{model_id}': it is not in the local Hugging Face cache "
                           f"({hub_cache_dir()}) and HF_HUB_OFFLINE is set; {fix}")
    why = hub_unreachable()
    if why is not None:
        raise BackendError(f"cannot fetch {what} '{model_id}': it is not in the local Hugging Face cache "
                           f"({hub_cache_dir()}) and the hub cannot be reached ({why}); {fix}")
