"""Configuration of mPLUG-Owl-Video, read from and written to the published ``config.json`` layout.

The published checkpoints (videophysics/videocon_physics, videophysics/videophy_2_auto) store
``vision_config``, ``visual_abstractor_config``, ``text_config`` (LLaMA) and ``num_query_tokens``.
Defaults below are the published architecture: CLIP ViT-L/14 at 224 px, a 6-layer abstractor
with 64 queries, LLaMA-7B.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-6


@dataclass
class AbstractorConfig:
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024


# LLaMA-7B, as in the published text_config.
TEXT_DEFAULTS: dict[str, Any] = dict(
    vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
    num_attention_heads=32, rms_norm_eps=1e-6, max_position_embeddings=2048,
    bos_token_id=1, eos_token_id=2, pad_token_id=2, hidden_act="silu", tie_word_embeddings=False,
)
_TEXT_KEYS = set(TEXT_DEFAULTS) | {"num_key_value_heads", "rope_theta", "initializer_range"}


def _pick(cls, data: dict[str, Any] | None):
    data = data or {}
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class MplugOwlConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    abstractor: AbstractorConfig = field(default_factory=AbstractorConfig)
    text: dict[str, Any] = field(default_factory=lambda: dict(TEXT_DEFAULTS))
    num_query_tokens: int = 64

    @property
    def media_length(self) -> int:
        """Positions one ``<|video|>`` takes in the LLM sequence: the queries plus the end token."""
        return self.num_query_tokens + 1

    def llama_config(self):
        from transformers import LlamaConfig

        text = {k: v for k, v in {**TEXT_DEFAULTS, **self.text}.items() if k in _TEXT_KEYS}
        return LlamaConfig(**text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MplugOwlConfig":
        return cls(vision=_pick(VisionConfig, data.get("vision_config")),
                   abstractor=_pick(AbstractorConfig, data.get("visual_abstractor_config")),
                   text={**TEXT_DEFAULTS, **(data.get("text_config") or {})},
                   num_query_tokens=int(data.get("num_query_tokens", 64)))

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "mplug-owl", "architectures": ["MplugOwlForConditionalGeneration"],
                "vision_config": asdict(self.vision),
                "visual_abstractor_config": asdict(self.abstractor),
                "text_config": {"model_type": "llama", **self.text},
                "num_query_tokens": self.num_query_tokens}

    @classmethod
    def from_file(cls, path: str | Path) -> "MplugOwlConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
