"""LoRA adapters for a diffusers pipeline: each loaded once, named, scaled, and checked to have matched.

``generator.lora`` is a list of :class:`LoraSpec`. :func:`apply_loras` reads each file (a local file or
folder, or a hub repo through ``huggingface_hub``), brings its keys into a layout diffusers' own loaders
understand, loads it with ``pipe.load_lora_weights(state_dict, adapter_name=...)`` and sets the scales
with ``pipe.set_adapters``. A LoRA that matches no module of the pipeline is an error, never a silent
no-op; one that matches only some of its modules loads with a warning giving the counts.

Layouts understood (the ``layout`` field of each record):
- ``diffusers``: keys ``transformer.<module>.lora_A.weight`` (what ``save_lora_weights`` writes).
- ``diffusers-unprefixed``: the same module names without ``transformer.`` (``save_lora_adapter``).
- ``wan-original`` / ``musubi``: ``diffusion_model.blocks.N.self_attn.q.lora_A.weight`` or
  ``lora_unet_blocks_N_...``; diffusers' Wan loader converts these itself.
- ``diffsynth``: DiffSynth-Studio's trainer (PhyGDPO's released files): the original Wan module names
  (``blocks.N.self_attn.q``, ``cross_attn.k``, ``ffn.0``, ...), peft's adapter name left inside the key
  (``lora_A.dpo.weight`` or ``lora_A.default.weight``) and, depending on the run, a ``pipe.dit.`` /
  ``dit.`` prefix. diffusers does not recognise these; we drop the adapter segment and the prefix and hand
  the keys to diffusers' own Wan converter as ``diffusion_model.*``. No alpha is stored (DiffSynth trains
  with alpha = rank), so the update is ``B @ A`` times ``scale``, as in DiffSynth's own loader.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BackendError, ConfigError
from ..runtime.hub import check_hub_model

log = logging.getLogger(__name__)

EXAMPLE = "'transformer.blocks.0.attn1.to_q.lora_A.weight' (diffusers) or 'blocks.0.self_attn.q.lora_A.weight' (Wan/DiffSynth)"
_ADAPTER_SEGMENT = re.compile(r"\.(lora_A|lora_B|lora_down|lora_up)\.(?!weight$|bias$)[^.]+\.(weight|bias)$")
_PAIR_DOWN = re.compile(r"\.(lora_A|lora_down)(\.[^.]+)?\.weight$")
_WAN_NAMES = re.compile(r"(^|\.)blocks\.\d+\.(self_attn|cross_attn|ffn\.[02])\b")
_COMPONENTS = ("transformer.", "transformer_2.", "text_encoder.", "text_encoder_2.", "unet.")


class LoraSpec(BaseModel):
    """One adapter: ``path`` is a hub id, a local ``.safetensors`` file, or a local folder."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, description="hub id (owner/name), local file or local folder")
    weight_name: str | None = Field(None, description="file inside the repo/folder (needed when it holds several)")
    subfolder: str | None = Field(None, description="folder inside the repo/folder")
    scale: float = Field(1.0, description="adapter weight; 0 turns it off")
    adapter_name: str | None = Field(None, description="default: lora0, lora1, ... in list order")
    transformer_2: bool = Field(False, description="load into the second transformer (Wan 2.2 A14B's low-noise "
                                                   "expert) instead of the first")


def _specs(specs: list[LoraSpec | dict[str, Any]]) -> list[LoraSpec]:
    out = []
    for i, spec in enumerate(specs):
        if isinstance(spec, LoraSpec):
            out.append(spec)
            continue
        try:
            out.append(LoraSpec.model_validate(spec))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "entry"
            raise ConfigError(f"generator.lora[{i}].{where}: {err['msg']} (got {spec!r}); each entry is "
                              "{path, weight_name, subfolder, scale, adapter_name}") from None
    return out


def resolve_file(spec: LoraSpec) -> Path:
    """The local file of a spec: a file as given, a file in a local folder, or a hub download."""
    path = Path(spec.path).expanduser()
    if path.is_file():
        if spec.weight_name and spec.weight_name != path.name:
            raise ConfigError(f"generator.lora path {spec.path} is a file, but weight_name is {spec.weight_name!r}; "
                              "drop weight_name or give the folder as path")
        return path
    if path.is_dir():
        folder = path / spec.subfolder if spec.subfolder else path
        if spec.weight_name:
            file = folder / spec.weight_name
            if not file.is_file():
                raise ConfigError(f"generator.lora: no file {file}; files there: {_listing(folder)}")
            return file
        return folder / _only_weight_file(sorted(p.name for p in folder.glob("*.safetensors")), str(folder))
    if path.is_absolute() or spec.path.startswith((".", "~")) or spec.path.count("/") != 1:
        raise ConfigError(f"generator.lora path {spec.path!r} is neither an existing file or folder nor a hub id "
                          "(owner/name)")
    return _download(spec)


def _download(spec: LoraSpec) -> Path:
    check_hub_model(spec.path, "generator.lora hub repo")  # not cached and no hub: fail now, not after retries
    try:
        import huggingface_hub as hub
    except ImportError:
        raise BackendError("generator.lora from the hub needs huggingface_hub: pip install huggingface_hub") from None
    name = spec.weight_name
    try:
        if name is None:
            prefix = f"{spec.subfolder.strip('/')}/" if spec.subfolder else ""
            files = [f[len(prefix):] for f in hub.list_repo_files(spec.path)
                     if f.startswith(prefix) and f.endswith(".safetensors") and "/" not in f[len(prefix):]]
            name = _only_weight_file(sorted(files), f"hub repo {spec.path}/{prefix}")
        return Path(hub.hf_hub_download(spec.path, name, subfolder=spec.subfolder))
    except (ConfigError, BackendError):
        raise
    except Exception as e:  # network, 404, auth: one line naming the repo and file
        raise BackendError(f"generator.lora: could not fetch {name or '*.safetensors'} from hub repo {spec.path}"
                           f"{f' (subfolder {spec.subfolder})' if spec.subfolder else ''}: "
                           f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


def _only_weight_file(names: list[str], where: str) -> str:
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(f"generator.lora: no .safetensors file in {where}; set path to the file")
    raise ConfigError(f"generator.lora: {where} holds {len(names)} .safetensors files ({', '.join(names[:6])}); "
                      "set weight_name to one of them")


def _listing(folder: Path) -> str:
    return ", ".join(sorted(p.name for p in folder.iterdir())[:8]) if folder.is_dir() else "(no such folder)"


def read_state_dict(file: Path) -> dict[str, Any]:
    """Tensors of a LoRA file (safetensors; ``.bin``/``.pt``/``.pth`` through ``torch.load(weights_only=True)``)."""
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(file))
        import torch

        return dict(torch.load(str(file), map_location="cpu", weights_only=True))
    except Exception as e:
        raise ConfigError(f"generator.lora: cannot read {file} as LoRA weights: {type(e).__name__}: {e}") from e


def _is_wan(pipe: Any) -> bool:
    return any(c.__name__ == "WanLoraLoaderMixin" for c in type(pipe).__mro__)


def to_diffusers_layout(state_dict: dict[str, Any], pipe: Any, file: Path | str = "") -> tuple[dict[str, Any], str]:
    """Keys in a layout ``pipe.load_lora_weights`` understands, and the name of the layout found."""
    keys = list(state_dict)
    stripped = {_ADAPTER_SEGMENT.sub(r".\1.\2", k): v for k, v in state_dict.items()}   # peft's adapter name
    if any(k.startswith(_COMPONENTS) for k in keys):
        return stripped, "diffusers"
    if any(k.startswith("diffusion_model.") for k in keys):
        return stripped, "wan-original"
    if any(k.startswith("lora_unet_") for k in keys):
        return stripped, "musubi"
    if any(_WAN_NAMES.search(k) for k in stripped):
        if not _is_wan(pipe):
            raise ConfigError(f"LoRA {file} uses the original Wan module names (e.g. {_sample(keys)}) but the "
                              f"pipeline is {type(pipe).__name__}; load it on a Wan pipeline")
        prefix = _block_prefix(stripped)
        return {"diffusion_model." + k[len(prefix):] if k.startswith(prefix) else k: v
                for k, v in stripped.items()}, "diffsynth"
    return {"transformer." + k: v for k, v in stripped.items()}, "diffusers-unprefixed"


def _block_prefix(state_dict: dict[str, Any]) -> str:
    """The text before ``blocks.N.`` shared by the block keys ('' , 'pipe.dit.', 'dit.', 'model.', ...)."""
    prefixes = {m.group(1) for k in state_dict if (m := re.match(r"^(.*?)blocks\.\d+\.", k))}
    return prefixes.pop() if len(prefixes) == 1 else ""


def count_pairs(state_dict: dict[str, Any]) -> int:
    """Modules the file adapts: the number of down (``lora_A`` / ``lora_down``) matrices."""
    return len({_PAIR_DOWN.sub("", k) for k in state_dict if _PAIR_DOWN.search(k)})


def count_matched(pipe: Any, adapter_name: str) -> int:
    """Modules of the pipeline that now carry ``adapter_name`` (peft LoRA layers)."""
    import torch

    n = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            n += sum(1 for m in component.modules()
                     if isinstance(getattr(m, "lora_A", None), torch.nn.ModuleDict) and adapter_name in m.lora_A)
    return n


def _sample(keys: list[str], n: int = 3) -> str:
    return ", ".join(repr(k) for k in keys[:n])


def _no_match(file: Path, keys: list[str], layout: str, pipe: Any, why: str = "") -> ConfigError:
    model = type(getattr(pipe, "transformer", None) or pipe).__name__
    what = "matched no module of" if not why or "not found in the base model" in why else "could not be loaded into"
    return ConfigError(f"LoRA {file} {what} {model} ({layout} layout, keys {_sample(keys)}{why}); "
                       f"expected keys like {EXAMPLE}: is it a LoRA for this model?")


def load_one(pipe: Any, spec: LoraSpec, adapter_name: str) -> dict[str, Any]:
    """Load one adapter (scale not yet set) and return its record."""
    file = resolve_file(spec)
    raw = read_state_dict(file)
    keys = list(raw)
    if not keys:
        raise ConfigError(f"LoRA {file} holds no tensors")
    state_dict, layout = to_diffusers_layout(raw, pipe, file)
    pairs = count_pairs(raw)
    kwargs = {}
    if spec.transformer_2:
        if getattr(pipe, "transformer_2", None) is None or "transformer_2" not in getattr(pipe, "_lora_loadable_modules", []):
            raise ConfigError(f"generator.lora {spec.path}: transformer_2 is set but {type(pipe).__name__} has no second "
                              "transformer with a LoRA loader (Wan 2.2 A14B has one); drop transformer_2")
        kwargs["load_into_transformer_2"] = True
    try:
        pipe.load_lora_weights(state_dict, adapter_name=adapter_name, **kwargs)
    except (ValueError, KeyError, IndexError, RuntimeError) as e:
        said = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise _no_match(file, keys, layout, pipe, f"; diffusers: {said}") from e
    matched = count_matched(pipe, adapter_name)
    if matched == 0:
        if any(adapter_name in names for names in pipe.get_list_adapters().values()):
            pipe.delete_adapters(adapter_name)
        raise _no_match(file, keys, layout, pipe)
    if matched < pairs:
        log.warning("LoRA %s: %d of its %d modules matched the pipeline, %d were skipped (layout %s)",
                    file, matched, pairs, pairs - matched, layout)
    return {"adapter_name": adapter_name, "path": spec.path, "weight_name": spec.weight_name,
            "subfolder": spec.subfolder, "file": str(file), "scale": spec.scale, "keys": len(keys),
            "component": "transformer_2" if spec.transformer_2 else "transformer",
            "pairs": pairs, "modules_matched": matched, "layout": layout}


def apply_loras(pipe: Any, specs: list[LoraSpec | dict[str, Any]]) -> list[dict[str, Any]]:
    """Load every adapter once, set their scales together, and return one record per adapter."""
    specs = _specs(specs)
    if not specs:
        return []
    if not hasattr(pipe, "load_lora_weights"):
        raise ConfigError(f"generator.lora: {type(pipe).__name__} has no LoRA loader in diffusers; "
                          "remove generator.lora or use a family that has one")
    if importlib.util.find_spec("peft") is None:
        raise BackendError("generator.lora needs the 'peft' package (diffusers loads LoRA through it): pip install peft")
    names = [s.adapter_name or f"lora{i}" for i, s in enumerate(specs)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"generator.lora: adapter_name {dupes[0]!r} is used twice; give each adapter its own name")
    records = [load_one(pipe, spec, name) for spec, name in zip(specs, names)]
    pipe.set_adapters(names, adapter_weights=[s.scale for s in specs])
    return records
