"""Exact parameter counts from configs, without weights: each model is built on the meta device.

Used by the memory plan (``memplan.py``) when a model's configs are in a local folder or the hub
cache; ``PUBLISHED`` holds the counts of the presets' models for when neither is there. Nothing
here downloads: the hub cache is only read (``hub.read_json``).
"""

from __future__ import annotations

import json
from typing import Any

from ..resources import cache_dir
from .hub import read_json

# Parameters of the presets' models, for planning offline. Every entry was computed by
# ``scripts/param_table.py``: the published architecture (diffusers conversion-script configs and class
# defaults; the hub config.json of T5-XXL, UMT5-XXL, Llama-3-8B, CLIP-L and the Qwen VLMs; mPLUG-Owl's
# published layout) built on the meta device. The Qwen counts equal the sizes the hub states (3.75B,
# 8.29B, 4.44B, 8.77B). HunyuanVideo 1.5's text encoders are Qwen2.5-VL-7B's language model and ByT5-small's
# encoder (the Glyph-SDXL-v2 color/font tokens its conversion adds are not counted: 1472 parameters each).
# LTX-2 counts its text connectors, audio VAE and vocoder too; Cosmos Predict 2.5's safety checker (cosmos_guardrail)
# is not counted; Motif-Video 2B's entry rests on its card's architecture table, not on its config.json (see the
# script).
# One entry per weighted component, so a pipeline sums its parts.
PUBLISHED: dict[str, dict[str, int]] = {
    "THUDM/CogVideoX-5b": {"transformer": 5_570_283_072, "text_encoder": 4_762_310_656, "vae": 215_583_907},
    "THUDM/CogVideoX-2b": {"transformer": 1_693_783_872, "text_encoder": 4_762_310_656, "vae": 215_583_907},
    "THUDM/CogVideoX1.5-5B": {"transformer": 5_570_676_352, "text_encoder": 4_762_310_656, "vae": 215_583_907},
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": {"transformer": 1_418_996_800, "text_encoder": 5_680_910_336,
                                         "vae": 126_892_531},
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": {"transformer": 14_288_491_584, "text_encoder": 5_680_910_336,
                                        "vae": 126_892_531},
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": {"transformer": 14_288_491_584, "transformer_2": 14_288_491_584,
                                         "text_encoder": 5_680_910_336, "vae": 126_892_531},
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": {"transformer": 4_999_787_712, "text_encoder": 5_680_910_336,
                                        "vae": 704_688_668},
    "Lightricks/LTX-Video": {"transformer": 1_923_385_472, "text_encoder": 4_762_310_656, "vae": 419_193_649},
    "hunyuanvideo-community/HunyuanVideo": {"transformer": 12_821_012_544, "text_encoder": 7_505_186_816,
                                            "text_encoder_2": 123_060_480, "vae": 246_478_803},
    "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v": {
        "transformer": 8_326_608_160, "text_encoder": 7_070_619_136, "text_encoder_2": 217_657_472,
        "vae": 1_260_634_115},
    "Lightricks/LTX-2": {
        "transformer": 18_876_174_592, "connectors": 1_431_475_200, "text_encoder": 12_202_563_392,
        "vae": 1_222_479_601, "audio_vae": 53_248_146, "vocoder": 55_592_802},
    "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers": {
        "transformer": 2_007_702_848, "text_encoder": 8_292_166_656, "text_encoder_2": 123_060_480,
        "vae": 246_478_803},
    "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": {
        "transformer": 14_288_491_584, "text_encoder": 5_680_910_336, "vae": 126_892_531},
    "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": {
        "transformer": 1_435_525_696, "text_encoder": 5_680_910_336, "vae": 126_892_531},
    "Efficient-Large-Model/SANA-Video_2B_480p_diffusers": {
        "transformer": 2_056_862_144, "text_encoder": 2_614_341_888, "vae": 126_892_531},
    "nvidia/Cosmos-Predict2.5-2B": {"transformer": 2_059_174_912, "text_encoder": 8_292_166_656, "vae": 126_892_531},
    "Motif-Technologies/Motif-Video-2B": {
        "transformer": 1_675_903_552, "text_encoder": 3_974_952_960, "vae": 126_892_531},
    "Qwen/Qwen2.5-VL-3B-Instruct": {"model": 3_754_622_976},
    "Qwen/Qwen2.5-VL-7B-Instruct": {"model": 8_292_166_656},
    "Qwen/Qwen3-VL-4B-Instruct": {"model": 4_437_815_808},
    "Qwen/Qwen3-VL-8B-Instruct": {"model": 8_767_123_696},
    "videophysics/videocon_physics": {"model": 7_152_633_856},
    "videophysics/videophy_2_auto": {"model": 7_152_633_856},
    # VideoScore2 is a full fine-tune of Qwen2.5-VL-7B-Instruct (its card's base_model): the same architecture
    "TIGER-Lab/VideoScore2": {"model": 8_292_166_656},
}

# What a pipeline of the table says about itself before its weights (or even its model_index.json) are on this
# machine: its pipeline class (model_index.json ``_class_name``) and the few transformer / VAE config values its
# family's frame and size rules, defaults and hidden size read (patch sizes, compression ratios, sample sizes,
# heads, text length). Written by ``scripts/param_table.py`` from the same published configs as ``PUBLISHED``.
PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "THUDM/CogVideoX-5b": {"pipeline": "CogVideoXPipeline",
        "transformer": {"num_attention_heads": 48, "attention_head_dim": 64, "in_channels": 16, "patch_size": 2,
                        "sample_height": 60, "sample_width": 90, "sample_frames": 49, "max_text_seq_length": 226,
                        "num_layers": 42},
        "vae": {"temporal_compression_ratio": 4, "block_out_channels": [128, 256, 256, 512]}},
    "THUDM/CogVideoX-2b": {"pipeline": "CogVideoXPipeline",
        "transformer": {"num_attention_heads": 30, "attention_head_dim": 64, "in_channels": 16, "patch_size": 2,
                        "sample_height": 60, "sample_width": 90, "sample_frames": 49, "max_text_seq_length": 226,
                        "num_layers": 30},
        "vae": {"temporal_compression_ratio": 4, "block_out_channels": [128, 256, 256, 512]}},
    "THUDM/CogVideoX1.5-5B": {"pipeline": "CogVideoXPipeline",
        "transformer": {"num_attention_heads": 48, "attention_head_dim": 64, "in_channels": 16, "patch_size": 2,
                        "patch_size_t": 2, "sample_height": 300, "sample_width": 300, "sample_frames": 81,
                        "max_text_seq_length": 226, "num_layers": 42},
        "vae": {"temporal_compression_ratio": 4, "block_out_channels": [128, 256, 256, 512]}},
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": {"pipeline": "WanPipeline",
        "transformer": {"num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
                        "patch_size": [1, 2, 2], "num_layers": 30},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": {"pipeline": "WanPipeline",
        "transformer": {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
                        "patch_size": [1, 2, 2], "num_layers": 40},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": {"pipeline": "WanPipeline",
        "transformer": {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
                        "patch_size": [1, 2, 2], "num_layers": 40},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": {"pipeline": "WanPipeline",
        "transformer": {"num_attention_heads": 24, "attention_head_dim": 128, "in_channels": 48,
                        "patch_size": [1, 2, 2], "num_layers": 30},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 16, "patch_size": 2}},
    "Lightricks/LTX-Video": {"pipeline": "LTXPipeline",
        "transformer": {"num_attention_heads": 32, "attention_head_dim": 64, "in_channels": 128, "patch_size": 1,
                        "patch_size_t": 1, "num_layers": 28},
        "vae": {"block_out_channels": [128, 256, 512, 512], "patch_size": 4, "patch_size_t": 1,
                "spatio_temporal_scaling": [True, True, True, False]}},
    "hunyuanvideo-community/HunyuanVideo": {"pipeline": "HunyuanVideoPipeline",
        "transformer": {"num_attention_heads": 24, "attention_head_dim": 128, "in_channels": 16, "patch_size": 2,
                        "patch_size_t": 1, "num_layers": 20},
        "vae": {"temporal_compression_ratio": 4, "spatial_compression_ratio": 8,
                "block_out_channels": [128, 256, 512, 512]}},
    "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v": {"pipeline": "HunyuanVideo15Pipeline",
        "transformer": {"num_attention_heads": 16, "attention_head_dim": 128, "in_channels": 65, "patch_size": 1,
                        "patch_size_t": 1, "target_size": 640, "num_layers": 54},
        "vae": {"temporal_compression_ratio": 4, "spatial_compression_ratio": 16,
                "block_out_channels": [128, 256, 512, 1024, 1024]}},
    "Lightricks/LTX-2": {"pipeline": "LTX2Pipeline",
        "transformer": {"num_attention_heads": 32, "attention_head_dim": 128, "in_channels": 128, "patch_size": 1,
                        "patch_size_t": 1, "num_layers": 48},
        "vae": {"temporal_compression_ratio": 8, "spatial_compression_ratio": 32,
                "block_out_channels": [256, 512, 1024, 2048], "patch_size": 4, "patch_size_t": 1,
                "spatio_temporal_scaling": [True, True, True, True]}},
    "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers": {"pipeline": "Kandinsky5T2VPipeline",
        "transformer": {"patch_size": [1, 2, 2], "model_dim": 1792},
        "vae": {"temporal_compression_ratio": 4, "spatial_compression_ratio": 8,
                "block_out_channels": [128, 256, 512, 512]}},
    "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": {"pipeline": "SkyReelsV2Pipeline",
        "transformer": {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
                        "patch_size": [1, 2, 2], "num_layers": 40},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": {"pipeline": "SkyReelsV2DiffusionForcingPipeline",
        "transformer": {"num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
                        "patch_size": [1, 2, 2], "num_layers": 30},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Efficient-Large-Model/SANA-Video_2B_480p_diffusers": {"pipeline": "SanaVideoPipeline",
        "transformer": {"num_attention_heads": 20, "attention_head_dim": 112, "in_channels": 16,
                        "patch_size": [1, 2, 2], "sample_size": 30, "num_layers": 20},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "nvidia/Cosmos-Predict2.5-2B": {"pipeline": "Cosmos2_5_PredictBasePipeline",
        "transformer": {"num_attention_heads": 16, "attention_head_dim": 128, "in_channels": 17,
                        "patch_size": [1, 2, 2], "concat_padding_mask": True, "num_layers": 28},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
    "Motif-Technologies/Motif-Video-2B": {"pipeline": "MotifVideoPipeline",
        "transformer": {"num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 33, "patch_size": 2,
                        "patch_size_t": 1, "num_layers": 12},
        "vae": {"scale_factor_temporal": 4, "scale_factor_spatial": 8}},
}


# Components of a diffusers pipeline that hold weights (the tokenizers and scheduler do not).
WEIGHTED = ("transformer", "transformer_2", "text_encoder", "text_encoder_2", "image_encoder", "vae")


def _entry(table: dict[str, Any], model_id: str) -> Any:
    norm = model_id.lower().removesuffix("-diffusers")
    return next((v for k, v in table.items() if k.lower().removesuffix("-diffusers") == norm), None)


def published(model_id: str) -> dict[str, int] | None:
    """The shipped counts for a hub id (case-insensitive, an optional "-Diffusers" ignored)."""
    parts = _entry(PUBLISHED, model_id)
    return dict(parts) if parts is not None else None


def published_configs(model_id: str) -> dict[str, Any] | None:
    """The shipped pipeline class and config values for a hub id (as ``published``), or None."""
    entry = _entry(PUBLISHED_CONFIGS, model_id)
    return json.loads(json.dumps(entry)) if entry is not None else None  # a copy the caller may change


def count_parameters(module: Any) -> int:
    """Distinct parameters of a module (tied weights counted once)."""
    return sum(p.numel() for p in module.parameters())


def _memo(kind: str, class_name: str | None, config: dict[str, Any], build) -> int:
    """``build()``'s count, remembered on disk by (kind, class, config) so a second plan of the same
    model skips the heavy imports (``paramcounts.json`` in phyt2v's cache folder, ``resources.cache_dir``)."""
    import hashlib
    import os

    key = hashlib.sha256(json.dumps([kind, class_name, config], sort_keys=True, default=str).encode()).hexdigest()
    root = cache_dir()
    path = root / "paramcounts.json"
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return int(memo[key])
    n = build()
    memo[key] = n
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs time
    return n


def diffusers_model_params(class_name: str, config: dict[str, Any], *, memo: bool = True) -> int:
    """A diffusers model (e.g. ``WanTransformer3DModel``) built on meta from its ``config.json``."""
    if memo:
        return _memo("diffusers", class_name, config, lambda: diffusers_model_params(class_name, config, memo=False))
    import diffusers
    import torch

    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise ValueError(f"diffusers has no model class {class_name}")
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        model = cls.from_config(cfg)
    return count_parameters(model)


def transformers_model_params(config: dict[str, Any], class_name: str | None = None, *, memo: bool = True) -> int:
    """A transformers model built on meta from its ``config.json`` (``class_name`` e.g.
    ``T5EncoderModel``; default: the first of the config's ``architectures``)."""
    if memo:
        return _memo("transformers", class_name, config,
                     lambda: transformers_model_params(config, class_name, memo=False))
    import torch
    import transformers

    data = dict(config)
    name = class_name or (data.get("architectures") or [None])[0]
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        raise ValueError(f"transformers has no model class {name!r}")
    model_type = data.pop("model_type", None) or getattr(cls.config_class, "model_type", None)
    conf = transformers.AutoConfig.for_model(model_type, **{k: v for k, v in data.items()
                                                             if not k.startswith("_")})
    with torch.device("meta"):
        model = cls(conf)
    return count_parameters(model)


def pipeline_params(model: str) -> dict[str, int] | None:
    """Parameters per weighted component of a diffusers pipeline whose configs are on disk
    (``model_index.json`` then each component's ``config.json``); None when they are not."""
    index = read_json(model, "model_index.json")
    if index is None:
        return None
    out: dict[str, int] = {}
    for comp in WEIGHTED:
        spec = index.get(comp)
        if not (isinstance(spec, list) and len(spec) == 2 and spec[1]):
            continue
        library, class_name = spec
        cfg = read_json(model, f"{comp}/config.json")
        if cfg is None:
            return None  # partial cache: the caller falls back to the table
        if library == "diffusers":
            out[comp] = diffusers_model_params(class_name, cfg)
        else:
            out[comp] = transformers_model_params(cfg, class_name)
    return out
