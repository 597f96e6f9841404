"""Recompute ``phyt2v.runtime.paramcount.PUBLISHED`` (parameters per component, built on the meta device) and
``PUBLISHED_CONFIGS`` (each pipeline's class and the transformer / VAE config values its family's rules and defaults
read) from the published architectures.

    PYTHONPATH=. python scripts/param_table.py      # {"params": ..., "configs": ...} as JSON

The configs below are the published ones (diffusers conversion scripts and class defaults, the hub
``config.json`` files of the text encoders and VLMs); no weights, no downloads.
"""

from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager
from typing import Iterator

from phyt2v.runtime.paramcount import diffusers_model_params, transformers_model_params
from phyt2v.scorers.mplug_owl.model import count_params as mplug_owl_params


@contextmanager
def made_on(device: str) -> Iterator[None]:
    """Modules constructed inside are made directly on ``device`` in bfloat16 (full-size random weights for the
    GPU checks, no fp32 copy); the default dtype is float32 again afterwards, even on an error."""
    import torch

    with torch.device(device):
        torch.set_default_dtype(torch.bfloat16)
        try:
            yield
        finally:
            torch.set_default_dtype(torch.float32)


def dm(class_name: str, config: dict) -> int:
    return diffusers_model_params(class_name, config, memo=False)


def tm(config: dict, class_name: str | None = None) -> int:
    return transformers_model_params(config, class_name, memo=False)


T5_XXL = dict(model_type="t5", d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)
UMT5_XXL = dict(T5_XXL, model_type="umt5", vocab_size=256384)
LLAMA3_8B = dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, vocab_size=128320)  # llava-llama-3-8b text part
CLIP_L = dict(model_type="clip_text_model", hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, vocab_size=49408, max_position_embeddings=77, projection_dim=768)
WAN_1_3B = dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, patch_size=[1, 2, 2])
WAN_14B = dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40, in_channels=16,
               out_channels=16, text_dim=4096, freq_dim=256, patch_size=[1, 2, 2])
WAN_5B = dict(num_attention_heads=24, attention_head_dim=128, ffn_dim=14336, num_layers=30, in_channels=48,
              out_channels=48, text_dim=4096, freq_dim=256, patch_size=[1, 2, 2])
WAN22_VAE = dict(base_dim=160, z_dim=48, is_residual=True, in_channels=12, out_channels=12, decoder_base_dim=256,
                 scale_factor_temporal=4, scale_factor_spatial=16, patch_size=2, latents_mean=[0.0] * 48,
                 latents_std=[1.0] * 48, clip_output=False)
COG_5B = dict(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True)
COG_15 = dict(COG_5B, patch_size_t=2, patch_bias=False, sample_height=300, sample_width=300, sample_frames=81)
QWEN25VL_3B = dict(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"],
                   text_config=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                                    num_attention_heads=16, num_key_value_heads=2, vocab_size=151936,
                                    tie_word_embeddings=True),
                   vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                                      out_hidden_size=2048), tie_word_embeddings=True)
QWEN25VL_7B = dict(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"],
                   text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                    num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                    tie_word_embeddings=False),
                   vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                                      out_hidden_size=3584), tie_word_embeddings=False)
QWEN3VL_4B = dict(model_type="qwen3_vl", architectures=["Qwen3VLForConditionalGeneration"],
                  text_config=dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                                   num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                                   tie_word_embeddings=True),
                  vision_config=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16,
                                     out_hidden_size=2560, deepstack_visual_indexes=[5, 11, 17]),
                  tie_word_embeddings=True)
QWEN3VL_8B = dict(model_type="qwen3_vl", architectures=["Qwen3VLForConditionalGeneration"],
                  text_config=dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                                   num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                                   tie_word_embeddings=False),
                  vision_config=dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16,
                                     out_hidden_size=4096, deepstack_visual_indexes=[8, 16, 24]),
                  tie_word_embeddings=False)


# HunyuanVideo 1.5 480p T2V (convert_hunyuan_video1_5_to_diffusers.py, TRANSFORMER_CONFIGS["480p_t2v"]); its VAE is
# AutoencoderKLHunyuanVideo15's defaults. Text encoders: Qwen2.5-VL-7B's language model (Qwen2_5_VLTextModel) and
# ByT5-small's encoder (google/byt5-small config.json) with Glyph-SDXL-v2 weights; the conversion adds its color and
# font tokens to the ByT5 vocabulary (1472 parameters each), a count no file here states: not included.
HY15_480P = dict(target_size=640, task_type="i2v")
QWEN25VL_7B_TEXT = dict(QWEN25VL_7B["text_config"], model_type="qwen2_5_vl_text")
BYT5_SMALL = dict(model_type="t5", d_model=1472, d_ff=3584, d_kv=64, num_heads=6, num_layers=12, num_decoder_layers=4,
                  vocab_size=384, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)

# The config values the families read before a pipeline loads (frame and size rules, defaults, hidden size).
TRANSFORMER_KEYS = ("num_attention_heads", "attention_head_dim", "in_channels", "patch_size", "patch_size_t",
                    "sample_height", "sample_width", "sample_frames", "max_text_seq_length", "target_size")
VAE_KEYS = ("temporal_compression_ratio", "spatial_compression_ratio", "scale_factor_temporal", "scale_factor_spatial",
            "block_out_channels", "patch_size", "patch_size_t", "spatio_temporal_scaling")


def facts(class_name: str, config: dict, keys: tuple[str, ...]) -> dict:
    """``keys`` of the config a diffusers model registers (its ``__init__`` defaults under ``config``); None left
    out, tuples as lists (JSON)."""
    import diffusers

    params = inspect.signature(getattr(diffusers, class_name).__init__).parameters
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    full.update(config)
    return {k: list(full[k]) if isinstance(full[k], tuple) else full[k] for k in keys if full.get(k) is not None}


# hub id -> (pipeline class, (transformer class, config), (VAE class, config)) of every pipeline in the table
PIPELINES = {
    "THUDM/CogVideoX-5b": ("CogVideoXPipeline", ("CogVideoXTransformer3DModel", COG_5B), ("AutoencoderKLCogVideoX", {})),
    "THUDM/CogVideoX-2b": ("CogVideoXPipeline", ("CogVideoXTransformer3DModel", {}), ("AutoencoderKLCogVideoX", {})),
    "THUDM/CogVideoX1.5-5B": ("CogVideoXPipeline", ("CogVideoXTransformer3DModel", COG_15),
                              ("AutoencoderKLCogVideoX", {})),
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": ("WanPipeline", ("WanTransformer3DModel", WAN_1_3B), ("AutoencoderKLWan", {})),
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": ("WanPipeline", ("WanTransformer3DModel", WAN_14B), ("AutoencoderKLWan", {})),
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": ("WanPipeline", ("WanTransformer3DModel", WAN_14B), ("AutoencoderKLWan", {})),
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": ("WanPipeline", ("WanTransformer3DModel", WAN_5B),
                                        ("AutoencoderKLWan", WAN22_VAE)),
    "Lightricks/LTX-Video": ("LTXPipeline", ("LTXVideoTransformer3DModel", {}), ("AutoencoderKLLTXVideo", {})),
    "hunyuanvideo-community/HunyuanVideo": ("HunyuanVideoPipeline", ("HunyuanVideoTransformer3DModel", {}),
                                            ("AutoencoderKLHunyuanVideo", {})),
    "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v": (
        "HunyuanVideo15Pipeline", ("HunyuanVideo15Transformer3DModel", HY15_480P), ("AutoencoderKLHunyuanVideo15", {})),
}


def configs() -> dict[str, dict]:
    """``PUBLISHED_CONFIGS``: each pipeline's class and its transformer / VAE config values (``*_KEYS``)."""
    return {model: {"pipeline": cls, "transformer": facts(*tr, TRANSFORMER_KEYS), "vae": facts(*vae, VAE_KEYS)}
            for model, (cls, tr, vae) in PIPELINES.items()}


def table() -> dict[str, dict[str, int]]:
    t5, umt5 = tm(T5_XXL, "T5EncoderModel"), tm(UMT5_XXL, "UMT5EncoderModel")
    cog_vae, wan_vae = dm("AutoencoderKLCogVideoX", {}), dm("AutoencoderKLWan", {})
    wan14 = dm("WanTransformer3DModel", WAN_14B)
    owl = mplug_owl_params()
    return {
        "THUDM/CogVideoX-5b": {"transformer": dm("CogVideoXTransformer3DModel", COG_5B), "text_encoder": t5,
                               "vae": cog_vae},
        "THUDM/CogVideoX-2b": {"transformer": dm("CogVideoXTransformer3DModel", {}), "text_encoder": t5,
                               "vae": cog_vae},
        "THUDM/CogVideoX1.5-5B": {"transformer": dm("CogVideoXTransformer3DModel", COG_15), "text_encoder": t5,
                                  "vae": cog_vae},
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": {"transformer": dm("WanTransformer3DModel", WAN_1_3B),
                                             "text_encoder": umt5, "vae": wan_vae},
        "Wan-AI/Wan2.1-T2V-14B-Diffusers": {"transformer": wan14, "text_encoder": umt5, "vae": wan_vae},
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers": {"transformer": wan14, "transformer_2": wan14, "text_encoder": umt5,
                                             "vae": wan_vae},
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers": {"transformer": dm("WanTransformer3DModel", WAN_5B), "text_encoder": umt5,
                                            "vae": dm("AutoencoderKLWan", WAN22_VAE)},
        "Lightricks/LTX-Video": {"transformer": dm("LTXVideoTransformer3DModel", {}), "text_encoder": t5,
                                 "vae": dm("AutoencoderKLLTXVideo", {})},
        "hunyuanvideo-community/HunyuanVideo": {"transformer": dm("HunyuanVideoTransformer3DModel", {}),
                                                "text_encoder": tm(LLAMA3_8B, "LlamaModel"),
                                                "text_encoder_2": tm(CLIP_L, "CLIPTextModel"),
                                                "vae": dm("AutoencoderKLHunyuanVideo", {})},
        "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v": {
            "transformer": dm("HunyuanVideo15Transformer3DModel", HY15_480P),
            "text_encoder": tm(QWEN25VL_7B_TEXT, "Qwen2_5_VLTextModel"),
            "text_encoder_2": tm(BYT5_SMALL, "T5EncoderModel"), "vae": dm("AutoencoderKLHunyuanVideo15", {})},
        "Qwen/Qwen2.5-VL-3B-Instruct": {"model": tm(QWEN25VL_3B)},
        "Qwen/Qwen2.5-VL-7B-Instruct": {"model": tm(QWEN25VL_7B)},
        "TIGER-Lab/VideoScore2": {"model": tm(QWEN25VL_7B)},  # a full fine-tune of Qwen2.5-VL-7B-Instruct
        "Qwen/Qwen3-VL-4B-Instruct": {"model": tm(QWEN3VL_4B)},
        "Qwen/Qwen3-VL-8B-Instruct": {"model": tm(QWEN3VL_8B)},
        "videophysics/videocon_physics": {"model": owl},
        "videophysics/videophy_2_auto": {"model": owl},
    }


if __name__ == "__main__":
    json.dump({"params": table(), "configs": configs()}, sys.stdout, indent=1)
    print()
