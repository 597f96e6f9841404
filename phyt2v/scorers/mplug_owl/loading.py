"""Load and save mPLUG-Owl-Video checkpoints in the published layout.

A checkpoint folder holds ``config.json``, ``tokenizer.model`` (LLaMA sentencepiece),
``preprocessor_config.json`` (optional) and weights: ``model.safetensors``, ``pytorch_model.bin``,
or shards listed by ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``.
Keys must match the module tree exactly; the only tolerated extra is the legacy LLaMA buffer
``*.rotary_emb.inv_freq`` (recomputed here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...errors import BackendError, InputError, first_line
from .config import MplugOwlConfig

META_FILES = ["config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
              "preprocessor_config.json", "generation_config.json"]
_IGNORED = re.compile(r"(^|\.)rotary_emb\.inv_freq$")


def resolve_model_dir(model: str) -> Path:
    """A local folder as is; anything else is a Hugging Face id fetched with huggingface_hub. (``tiny`` is
    resolved before, by ``runtime.OwlRuntime``.)"""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise InputError(f"scorer model '{model}' is neither a checkpoint folder nor a Hugging Face id "
                         "(owner/name) nor 'tiny'. Pass --set scorer.model=<folder, id or tiny>.")
    from ...runtime.hub import check_hub_model

    check_hub_model(model, "scorer weights", "scorer.model")  # at once, not after the hub's retries
    try:
        from huggingface_hub import list_repo_files, snapshot_download
    except ImportError as e:  # pragma: no cover - huggingface_hub ships with transformers
        raise BackendError(f"huggingface_hub is missing ({e}); pip install huggingface_hub") from None
    patterns = META_FILES + ["*.safetensors", "*.bin", "*.index.json"]
    try:  # fetch one weight format only (the repos may hold both)
        names = list_repo_files(model)
        weights = pick_weight_files(names)
        index = [n for n in names if n.endswith(".index.json")]
        patterns = META_FILES + weights + index
    except Exception:
        pass  # offline: take whatever the local cache holds
    try:
        return Path(snapshot_download(model, allow_patterns=patterns))
    except Exception as e:
        raise BackendError(f"cannot fetch scorer weights '{model}': {type(e).__name__}: "
                           f"{first_line(e)}. Check the id and network "
                           "(or HF_TOKEN), or pass a local folder with --set scorer.model=PATH.") from None


def pick_weight_files(names: list[str]) -> list[str]:
    """The weight files to read, from a listing: safetensors first, then .bin; sharded or single."""
    names = [Path(n).name for n in names]
    for index, single in (("model.safetensors.index.json", "model.safetensors"),
                          ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        if index in names:
            return [index]
        if single in names:
            return [single]
    return []


def _weight_shards(folder: Path) -> tuple[list[Path], set[str] | None]:
    """The weight files, and the key set from the shard index when there is one."""
    picked = pick_weight_files([p.name for p in folder.iterdir()])
    if not picked:
        raise BackendError(f"no weights in {folder}: expected model.safetensors, pytorch_model.bin or a "
                           "sharded index (*.index.json). Is this a VideoCon-Physics/VideoPhy-2 checkpoint?")
    if not picked[0].endswith(".index.json"):
        return [folder / picked[0]], None
    weight_map = json.loads((folder / picked[0]).read_text(encoding="utf-8")).get("weight_map", {})
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise BackendError(f"checkpoint {folder} lists shards that are absent: {', '.join(missing[:3])}. "
                           "Re-download the checkpoint.")
    return [folder / s for s in shards], set(weight_map)


def _read_shard(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
        return torch.load(str(path), map_location="cpu", weights_only=True)


def check_keys(expected: set[str], found: set[str], where: str) -> None:
    """Strict key matching with one clear error that names what is missing and what is extra."""
    missing = sorted(expected - found)
    unexpected = sorted(k for k in found - expected if not _IGNORED.search(k))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise BackendError(f"checkpoint {where} does not match the mPLUG-Owl-Video architecture: "
                           f"{'; '.join(parts)}. Use a merged VideoCon-Physics or VideoPhy-2 checkpoint.")


def load_model(folder: str | Path, *, dtype=None, device: str = "cpu"):
    """Build the model from ``config.json`` without allocating random weights, then load every shard
    (converted to ``dtype`` and moved to ``device`` shard by shard)."""
    import torch

    from .model import MplugOwlForConditionalGeneration

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise BackendError(f"{folder} has no config.json; pass a VideoCon-Physics/VideoPhy-2 checkpoint folder.")
    config = MplugOwlConfig.from_file(folder / "config.json")
    dtype = dtype or torch.float32
    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(config)
    expected = set(model.state_dict().keys())
    shards, found = _weight_shards(folder)
    first = None
    if found is None:
        first = _read_shard(shards[0])
        found = set(first)
    check_keys(expected, found, str(folder))
    for path in shards:
        sd = first if first is not None else _read_shard(path)
        first = None
        sd = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
              for k, v in sd.items() if k in expected}
        try:
            model.load_state_dict(sd, strict=False, assign=True)
        except RuntimeError as e:
            raise BackendError(f"checkpoint {folder} has tensors of the wrong shape for its config.json: "
                               f"{str(e).splitlines()[-1].strip()}") from None
        del sd
    # buffers that are not saved (LLaMA rotary frequencies) are rebuilt on the target device
    rotary = model.language_model.model.rotary_emb
    model.language_model.model.rotary_emb = type(rotary)(config=model.language_model.config).to(device)
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftover:
        raise BackendError(f"checkpoint {folder} left tensors unloaded: {', '.join(leftover[:3])}")
    return model.eval(), config


def save_model(model, folder: str | Path, *, fmt: str = "safetensors", shards: int = 1) -> Path:
    """Write ``config.json`` and the weights in the published layout (``fmt``: safetensors | bin)."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save(folder / "config.json")
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    ext = "safetensors" if fmt == "safetensors" else "bin"
    stem = "model" if ext == "safetensors" else "pytorch_model"

    def write(part: dict, name: str) -> None:
        if ext == "safetensors":
            from safetensors.torch import save_file

            save_file(part, str(folder / name), metadata={"format": "pt"})
        else:
            torch.save(part, str(folder / name))

    if shards <= 1:
        write(sd, f"{stem}.{ext}")
        return folder
    keys = list(sd)
    size = -(-len(keys) // shards)
    weight_map = {}
    for i in range(shards):
        name = f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
        part = {k: sd[k] for k in keys[i * size:(i + 1) * size]}
        write(part, name)
        weight_map.update({k: name for k in part})
    (folder / f"{stem}.{ext}.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))
    return folder
