"""Where a pipeline's folder is (``resolve_model``: tiny, a local folder or a hub id), and what it says about itself
before any weight loads: its pipeline class (model_index.json ``_class_name``) and the VAE / transformer configs the
frame and size rules read, through ``runtime.hub.read_json`` (a local folder, or the local hub cache), else from the
published table (``paramcount.PUBLISHED_CONFIGS``); never a download (but ``fetch_index``'s few kB of configs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.hub import hub_offline, read_json
from ..runtime.hub import resolve_model as _resolve
from ..runtime.paramcount import published_configs

TINY = {f"tiny-{kind}": kind for kind in ("wan", "ltx", "hunyuan", "cogvideox", "ltx2", "kandinsky5", "skyreels",
                                          "skyreels-df", "sana-video", "cosmos", "motif", "hunyuan15", "mochi")}


@dataclass
class PipelineIndex:
    class_name: str | None
    vae: dict[str, Any] | None = None
    transformer: dict[str, Any] | None = None
    components: dict[str, Any] = field(default_factory=dict)
    source: str = "folder"  # folder (a local or tiny folder) | cache (the hub cache) | table (PUBLISHED_CONFIGS)


def read_index(model: str) -> PipelineIndex | None:
    """The pipeline's model_index.json and component configs, or None when not on this machine."""
    index = read_json(model, "model_index.json")
    if index is None:
        return None
    return PipelineIndex(class_name=index.get("_class_name"),
                         vae=read_json(model, "vae/config.json"),
                         transformer=read_json(model, "transformer/config.json"),
                         components={k: v for k, v in index.items() if not k.startswith("_")})


def index_before_load(model: str, default_tiny: str = "cogvideox") -> PipelineIndex | None:
    """What ``model`` says about itself before any weight loads or downloads: a tiny or local folder's files, a
    hub id's cached files, else its entry in the published table; None when none of them knows it."""
    if model == "tiny" or model in TINY or Path(model).expanduser().is_dir():
        return read_index(resolve_model(model, default_tiny))
    index = read_index(model) if model.count("/") == 1 else None
    if index is not None:
        index.source = "cache"
        return index
    table = published_configs(model)
    if table is None:
        return None
    return PipelineIndex(class_name=table["pipeline"], vae=table["vae"], transformer=table["transformer"],
                         source="table")


CONFIG_FILES = ("model_index.json", "transformer/config.json", "vae/config.json")


def fetch_index(model: str) -> PipelineIndex | None:
    """A hub id's model_index.json and transformer / VAE configs fetched into the hub cache (a few kB, before any
    weight), then read: the family check of a model neither cached nor in the table, before its weights download.
    None when offline, for a path, or when they cannot be fetched (loading then says why)."""
    if model.count("/") != 1 or Path(model).expanduser().exists() or hub_offline():
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for rel in CONFIG_FILES:
        try:
            hf_hub_download(model, rel)
        except (OSError, ValueError, EntryNotFoundError):  # a component without a config is read as unknown
            if rel == CONFIG_FILES[0]:
                return None
    index = read_index(model)
    if index is not None:
        index.source = "cache"
    return index


def resolve_model(model: str, default_tiny: str = "cogvideox") -> str:
    """'tiny' / 'tiny-<family>' -> a tiny pipeline folder; an existing folder -> its path; else a hub id."""
    kind = TINY.get(model, default_tiny if model == "tiny" else None)
    if kind is not None:
        model = "tiny"
    return _resolve(model, tiny_kind=kind or default_tiny, what="generator model",
                    example="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", marker="model_index.json")
