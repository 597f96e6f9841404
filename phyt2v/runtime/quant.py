"""``quantization: none | int8 | nf4 | fp8`` for the llm, captioner and scorer: transformers'
quantization configs, checked before any weights load.

int8 and nf4 go through bitsandbytes (``BitsAndBytesConfig``), fp8 through torchao
(``TorchAoConfig``, float8 weights with dynamic float8 activations). All three need a CUDA GPU.
A quantized scorer's numbers are not the published metric (VideoCon-Physics was evaluated in 16 bit).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..errors import ConfigError

MODES = ("none", "int8", "nf4", "fp8")
PACKAGE = {"int8": "bitsandbytes", "nf4": "bitsandbytes", "fp8": "torchao"}


def check_quantization(mode: str, device: str, key: str) -> None:
    """Raise ConfigError naming ``key`` when ``mode`` is unknown, or its package or CUDA is missing."""
    if mode not in MODES:
        raise ConfigError(f"{key} is '{mode}'; use one of {', '.join(MODES)}.")
    if mode == "none":
        return
    if not str(device).startswith("cuda"):
        raise ConfigError(f"{key}={mode} needs a CUDA GPU (device is {device}); set {key}=none, or run on a "
                          "GPU machine.")
    pkg = PACKAGE[mode]
    if importlib.util.find_spec(pkg) is None:
        raise ConfigError(f"{key}={mode} needs the '{pkg}' package, which is not installed; "
                          f"`pip install {pkg}`, or set {key}=none.")


def quantization_config(mode: str, device: str, key: str) -> Any:
    """The transformers ``quantization_config`` for ``mode`` (None for 'none'), after the checks."""
    check_quantization(mode, device, key)
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


def quantize_module(model: Any, mode: str, device: str, key: str) -> Any:
    """Quantize a plain torch module already on ``device`` in place (for models not loaded through
    transformers, e.g. the VideoCon-Physics scorer): its Linear layers, with torchao."""
    check_quantization(mode, device, key)
    if mode == "none":
        return model
    if importlib.util.find_spec("torchao") is None:
        raise ConfigError(f"{key}={mode} for this model needs the 'torchao' package (its layers are quantized "
                          "in place); `pip install torchao`, or set {key}=none.".replace("{key}", key))
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int4WeightOnlyConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    conf = {"int8": Int8WeightOnlyConfig(), "nf4": Int4WeightOnlyConfig(),
            "fp8": Float8DynamicActivationFloat8WeightConfig()}[mode]
    quantize_(model, conf)
    return model
