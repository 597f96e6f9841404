"""``quantization: none | int8 | nf4 | fp8`` for the llm, captioner and scorer, checked before any weights load.

Two paths quantize a model, and each backend class says which one it takes (``quantization_path``):
- ``"transformers"``: ``from_pretrained`` with a quantization config; int8 and nf4 through bitsandbytes
  (``BitsAndBytesConfig``), fp8 through torchao (``TorchAoConfig``: float8 weights, dynamic float8 activations).
- ``"torchao"``: a plain torch module (VideoCon-Physics, VideoPhy-2) quantized in place by torchao's ``quantize_``
  for every mode. It is loaded to CPU RAM first and each Linear moves to the GPU as it is quantized, so the GPU
  never holds the 16-bit model: its peak is the quantized size the memory plan counts.
A backend without a path takes no quantization (a GGUF carries its own; an endpoint's model is not ours to
quantize). All modes need a CUDA GPU; fp8 one of compute capability 8.9 or newer. A quantized scorer's numbers are
not the published metric (VideoCon-Physics was evaluated in 16 bit).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import ConfigError, Phyt2vError

if TYPE_CHECKING:
    from ..config import Config

MODES = ("none", "int8", "nf4", "fp8")
PACKAGE = {"transformers": {"int8": "bitsandbytes", "nf4": "bitsandbytes", "fp8": "torchao"},
           "torchao": {"int8": "torchao", "nf4": "torchao", "fp8": "torchao"}}
FP8_CAPABILITY = (8, 9)   # float8 matmuls: Ada (8.9), Hopper (9.0) and later
BNB_MOVABLE = (0, 48)     # the first bitsandbytes whose 4/8-bit models transformers lets ``.to()`` move


def check_quantization(mode: str, device: str, key: str, path: str = "transformers") -> None:
    """Raise ConfigError naming ``key`` when ``mode`` is unknown, or CUDA, the package ``path`` uses for it, or
    (fp8) a GPU that runs float8 is missing."""
    if mode not in MODES:
        raise ConfigError(f"{key} is '{mode}'; use one of {', '.join(MODES)}.")
    if mode == "none":
        return
    if not str(device).startswith("cuda"):
        raise ConfigError(f"{key}={mode} needs a CUDA GPU (device is {device}); set {key}=none, or run on a "
                          "GPU machine.")
    pkg = PACKAGE[path][mode]
    if importlib.util.find_spec(pkg) is None:
        how = "" if path == "transformers" else " (this model's layers are quantized in place by torchao)"
        raise ConfigError(f"{key}={mode} needs the '{pkg}' package{how}, which is not installed; "
                          f"`pip install {pkg}`, or set {key}=none.")
    if mode == "fp8":
        import torch

        cap = tuple(torch.cuda.get_device_capability(device))
        if cap < FP8_CAPABILITY:
            raise ConfigError(f"{key}=fp8 needs a GPU of compute capability 8.9 or newer (Ada, Hopper); {device} is "
                              f"{cap[0]}.{cap[1]}: set {key}=int8 or nf4, or {key}=none.")


def check_movable(mode: str, key: str) -> None:
    """A bitsandbytes-quantized model that the swap placement moves between GPU and CPU needs bitsandbytes >= 0.48."""
    if mode not in ("int8", "nf4"):
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("bitsandbytes")
    except PackageNotFoundError:
        return  # check_quantization names the missing package
    from packaging.version import Version

    if Version(found).release[:2] < BNB_MOVABLE:
        raise ConfigError(f"{key}={mode} under the swap placement moves the model between GPU and CPU, which needs "
                          f"bitsandbytes >= 0.48 (installed: {found}); `pip install -U bitsandbytes`, or set {key}=none.")


def check_applies(role: str, backend: str, cls: type, mode: str) -> None:
    """Refuse ``{role}.quantization`` for a backend class that takes none (no ``quantization_path``)."""
    if mode != "none" and getattr(cls, "quantization_path", None) is None:
        why = getattr(cls, "quantization_note", "") or "it loads no weights through phyt2v's quantization"
        raise ConfigError(f"{role}.quantization={mode} does not apply to the {role} backend '{backend}' ({why}); "
                          f"set {role}.quantization=none.")


def check_shared(role: str, mode: str, captioner_mode: str) -> None:
    """Refuse ``{role}.quantization`` for a role that uses the captioner's loaded VLM copy when it asks for other
    than that copy's setting (the copy is loaded once, with ``captioner.quantization``)."""
    if mode not in ("none", captioner_mode):
        raise ConfigError(f"{role}.quantization={mode} does not apply: the {role} is the captioner's VLM (one shared "
                          f"copy, loaded with captioner.quantization={captioner_mode}); set "
                          f"captioner.quantization={mode} to quantize the shared copy, or {role}.quantization=none.")


def check_before_load(config: "Config", plan: Any) -> None:
    """Every role's quantization against the plan (``memplan.Plan``), before any weights load: the backend takes
    it, a role sharing the captioner's copy asks for that copy's setting, the package and GPU are there, and a
    model the swap placement moves can be moved. Raises ConfigError naming the key and the fix."""
    from ..config.ensemble import plan_role, scorer_sections, setting_key
    from .devices import resolve_device

    roles = [("llm", plan.llm.get("backend") or config.llm.backend, config.llm),
             ("captioner", config.captioner.backend, config.captioner)]
    roles += [(plan_role(label), s.backend, s) for label, s in scorer_sections(config)]  # each ensemble member
    moved = plan.placement in ("swap", "offload")
    for role, backend, section in roles:
        key = setting_key(role, "quantization")
        mode = section.quantization
        if mode == "none":
            continue
        if plan.roles[role].shared_with == "captioner":
            check_shared(role, mode, config.captioner.quantization)
            continue  # the same setting: checked as the captioner's
        if plan.roles[role].source == "remote":  # a served role: its weights are on the endpoint's server
            raise ConfigError(f"{key}={mode} does not apply to the {role} backend '{backend}' (the model runs on the "
                              f"endpoint's server; quantize it there); set {key}=none.")
        try:
            cls = registry.resolve(role.partition(":")[0], backend)
        except Phyt2vError:
            continue  # a backend that cannot be imported fails when it is built, with its own message
        check_applies(role, backend, cls, mode)
        path = cls.quantization_path
        check_quantization(mode, resolve_device(section.device, setting_key(role, "device")), key, path)
        if moved and path == "transformers":
            check_movable(mode, key)


def quantization_config(mode: str, device: str, key: str) -> Any:
    """The transformers ``quantization_config`` for ``mode`` (None for 'none'), after the checks."""
    check_quantization(mode, device, key, "transformers")
    if mode == "none":
        return None
    import torch

    if mode == "int8":
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_8bit=True)
    if mode == "nf4":
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16)
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig
    from transformers import TorchAoConfig

    return TorchAoConfig(quant_type=Float8DynamicActivationFloat8WeightConfig())


def quantize_module(model: Any, mode: str, device: str, key: str) -> str:
    """Quantize a plain torch module in place with torchao (its Linear layers) and leave it on ``device``; returns
    the mode applied. Load the model to CPU first: ``quantize_(device=...)`` moves each Linear to the GPU just before
    quantizing it, so the GPU never holds the 16-bit weights."""
    check_quantization(mode, device, key, "torchao")
    if mode == "none":
        return "none"
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int4WeightOnlyConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    conf = {"int8": Int8WeightOnlyConfig(), "nf4": Int4WeightOnlyConfig(),
            "fp8": Float8DynamicActivationFloat8WeightConfig()}[mode]
    quantize_(model, conf, device=device)
    model.to(device)  # what quantize_ left behind (norms, embeddings, the vision tower's convolutions)
    return mode
