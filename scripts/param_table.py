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
    if class_name in ("LTX2TextConnectors", "LTX2Vocoder"):  # not in diffusers' top-level namespace
        import torch

        from phyt2v.runtime.paramcount import count_parameters

        with torch.device("meta"):
            return count_parameters(model_class(class_name)(**config))
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

# LTX-2 (convert_ltx2_to_diffusers.py, version "2.0"): the audio-video transformer, text connectors, video VAE (x32
# spatial, x8 temporal), audio VAE and vocoder; Gemma-3-12B (google/gemma-3-12b-it config.json: the text model, whose
# meta count equals the 11,765,788,416 of keras-hub's gemma3_12b_text, and the SigLIP-so400m tower at 896 px).
LTX2_TRANSFORMER = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
                        attention_head_dim=128, cross_attention_dim=4096, vae_scale_factors=(8, 32, 32),
                        pos_embed_max_pos=20, base_height=2048, base_width=2048, audio_in_channels=128,
                        audio_out_channels=128, audio_patch_size=1, audio_patch_size_t=1, audio_num_attention_heads=32,
                        audio_attention_head_dim=64, audio_cross_attention_dim=2048, audio_scale_factor=4,
                        audio_pos_embed_max_pos=20, audio_sampling_rate=16000, audio_hop_length=160, num_layers=48,
                        activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads", norm_elementwise_affine=False,
                        norm_eps=1e-6, caption_channels=3840, attention_bias=True, attention_out_bias=True,
                        rope_theta=10000.0, rope_double_precision=True, causal_offset=1, rope_type="split",
                        use_prompt_embeddings=True, perturbed_attn=False)
LTX2_CONNECTORS = dict(caption_channels=3840, text_proj_in_factor=49, video_connector_num_attention_heads=30,
                       video_connector_attention_head_dim=128, video_connector_num_layers=2,
                       video_connector_num_learnable_registers=128, audio_connector_num_attention_heads=30,
                       audio_connector_attention_head_dim=128, audio_connector_num_layers=2,
                       audio_connector_num_learnable_registers=128, connector_rope_base_seq_len=4096,
                       rope_type="split", per_modality_projections=False, proj_bias=False)
LTX2_VAE = dict(latent_channels=128, block_out_channels=(256, 512, 1024, 2048),
                down_block_types=("LTX2VideoDownBlock3D",) * 4, decoder_block_out_channels=(256, 512, 1024),
                layers_per_block=(4, 6, 6, 2, 2), decoder_layers_per_block=(5, 5, 5, 5),
                spatio_temporal_scaling=(True, True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
                decoder_inject_noise=(False, False, False, False),
                downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
                upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"), upsample_residual=(True, True, True),
                upsample_factor=(2, 2, 2), patch_size=4, patch_size_t=1, encoder_causal=True, decoder_causal=False,
                spatial_compression_ratio=32, temporal_compression_ratio=8)
LTX2_AUDIO_VAE = dict(base_channels=128, output_channels=2, ch_mult=(1, 2, 4), num_res_blocks=2, attn_resolutions=None,
                      in_channels=2, resolution=256, latent_channels=8, norm_type="pixel", causality_axis="height",
                      mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=64,
                      double_z=True)
LTX2_VOCODER = dict(in_channels=128, hidden_channels=1024, out_channels=2, upsample_kernel_sizes=[16, 15, 8, 4, 4],
                    upsample_factors=[6, 5, 2, 2, 2], resnet_kernel_sizes=[3, 7, 11],
                    resnet_dilations=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], act_fn="leaky_relu",
                    leaky_relu_negative_slope=0.1, antialias=False, final_act_fn="tanh", final_bias=True,
                    output_sampling_rate=24000)
GEMMA3_12B = dict(model_type="gemma3", architectures=["Gemma3ForConditionalGeneration"],
                  text_config=dict(hidden_size=3840, intermediate_size=15360, num_hidden_layers=48,
                                   num_attention_heads=16, num_key_value_heads=8, head_dim=256, vocab_size=262208),
                  vision_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                     num_attention_heads=16, image_size=896, patch_size=14), mm_tokens_per_image=256)
# Kandinsky 5.0 T2V Lite sft 5s (kandinskylab Kandinsky-5 repo, configs/config_5s_sft.yaml dit_params); the text
# encoders are Qwen2.5-VL-7B (whole, as the pipeline loads it) and CLIP-L; the VAE is HunyuanVideo's.
K5_LITE = dict(in_visual_dim=16, out_visual_dim=16, time_dim=512, patch_size=(1, 2, 2), model_dim=1792, ff_dim=7168,
               num_text_blocks=2, num_visual_blocks=32, axes_dims=(16, 24, 24), visual_cond=True, in_text_dim=3584,
               in_text_dim2=768, attention_type="regular")
# SkyReels-V2 (convert_skyreelsv2_to_diffusers.py): UMT5-XXL and the Wan 2.1 VAE, as Wan.
SKYREELS_14B = dict(WAN_14B, added_kv_proj_dim=None, cross_attn_norm=True, eps=1e-6, inject_sample_info=False,
                    qk_norm="rms_norm_across_heads")
SKYREELS_DF_1_3B = dict(WAN_1_3B, added_kv_proj_dim=None, cross_attn_norm=True, eps=1e-6, inject_sample_info=True,
                        qk_norm="rms_norm_across_heads")
# Sana-Video 2B 480p (convert_sana_video_to_diffusers.py, --video_size 480): Wan 2.1 VAE, Gemma-2-2B-it's decoder
# (Efficient-Large-Model/gemma-2-2b-it config.json: transformers' Gemma2Config defaults are that model's).
SANA_VIDEO_2B = dict(in_channels=16, out_channels=16, num_attention_heads=20, attention_head_dim=112, num_layers=20,
                     num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240,
                     caption_channels=2304, mlp_ratio=3.0, attention_bias=False, sample_size=30, patch_size=(1, 2, 2),
                     norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)
GEMMA2_2B = dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                 num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=256000)
# Cosmos Predict 2.5 2B (convert_cosmos_to_diffusers.py, "Cosmos-2.5-Predict-Base-2B"): Wan 2.1 VAE, Cosmos-Reason1-7B
# (Qwen2.5-VL-7B's architecture). The safety checker (cosmos_guardrail's models) is not counted.
COSMOS25_2B = dict(in_channels=17, out_channels=16, num_attention_heads=16, attention_head_dim=128, num_layers=28,
                   mlp_ratio=4.0, text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240), patch_size=(1, 2, 2),
                   rope_scale=(1.0, 3.0, 3.0), concat_padding_mask=True, extra_pos_embed_type=None,
                   use_crossattn_projection=True, crossattn_proj_in_channels=100352, encoder_hidden_states_channels=1024)
# Motif-Video 2B: no config.json was reachable; the model card (its architecture table: hidden 1536 = 12 heads x 128,
# 12 dual-stream + 16 single-stream + 8 DDT decoder layers, shared cross-attention in the single stream, Wan 2.1 VAE,
# 2x2x1 patches) and the T5Gemma2 encoder's production size (hidden 2560, FFN 10240, 34 layers, vocab 262144, as the
# ComfyUI-MotifVideo2B node states; heads as T5Gemma 2's Gemma-3-4B base: 8 x 256, 4 KV). The I2V image projection
# (image_embed_dim) is left out: a few million parameters. Replace with the hub configs when they can be read.
MOTIF_2B = dict(in_channels=33, out_channels=16, num_attention_heads=12, attention_head_dim=128, num_layers=12,
                num_single_layers=16, num_decoder_layers=8, patch_size=2, patch_size_t=1, text_embed_dim=2560,
                enable_text_cross_attention_single=True)
T5GEMMA2_4B = dict(model_type="t5gemma2_encoder", text_config=dict(hidden_size=2560, intermediate_size=10240,
                                                                    num_hidden_layers=34, num_attention_heads=8,
                                                                    num_key_value_heads=4, head_dim=256,
                                                                    vocab_size=262144, dropout_rate=0.0))

# The config values the families read before a pipeline loads (frame and size rules, defaults, hidden size).
TRANSFORMER_KEYS = ("num_attention_heads", "attention_head_dim", "in_channels", "patch_size", "patch_size_t",
                    "sample_height", "sample_width", "sample_frames", "max_text_seq_length", "target_size", "model_dim",
                    "sample_size", "concat_padding_mask", "num_layers")
VAE_KEYS = ("temporal_compression_ratio", "spatial_compression_ratio", "scale_factor_temporal", "scale_factor_spatial",
            "block_out_channels", "patch_size", "patch_size_t", "spatio_temporal_scaling")


def model_class(class_name: str) -> type:
    """A diffusers model class, also those only exported by their pipeline package (LTX-2's connectors, vocoder)."""
    import diffusers
    from diffusers.pipelines import ltx2

    return getattr(diffusers, class_name, None) or getattr(ltx2, class_name, None) or getattr(ltx2.vocoder, class_name)


def facts(class_name: str, config: dict, keys: tuple[str, ...]) -> dict:
    """``keys`` of the config a diffusers model registers (its ``__init__`` defaults under ``config``); None left
    out, tuples as lists (JSON)."""
    params = inspect.signature(model_class(class_name).__init__).parameters
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
    "Lightricks/LTX-2": ("LTX2Pipeline", ("LTX2VideoTransformer3DModel", LTX2_TRANSFORMER),
                         ("AutoencoderKLLTX2Video", LTX2_VAE)),
    "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers": (
        "Kandinsky5T2VPipeline", ("Kandinsky5Transformer3DModel", K5_LITE), ("AutoencoderKLHunyuanVideo", {})),
    "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": (
        "SkyReelsV2Pipeline", ("SkyReelsV2Transformer3DModel", SKYREELS_14B), ("AutoencoderKLWan", {})),
    "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": (
        "SkyReelsV2DiffusionForcingPipeline", ("SkyReelsV2Transformer3DModel", SKYREELS_DF_1_3B),
        ("AutoencoderKLWan", {})),
    "Efficient-Large-Model/SANA-Video_2B_480p_diffusers": (
        "SanaVideoPipeline", ("SanaVideoTransformer3DModel", SANA_VIDEO_2B), ("AutoencoderKLWan", {})),
    "nvidia/Cosmos-Predict2.5-2B": (
        "Cosmos2_5_PredictBasePipeline", ("CosmosTransformer3DModel", COSMOS25_2B), ("AutoencoderKLWan", {})),
    "Motif-Technologies/Motif-Video-2B": (
        "MotifVideoPipeline", ("MotifVideoTransformer3DModel", MOTIF_2B), ("AutoencoderKLWan", {})),
}


def configs() -> dict[str, dict]:
    """``PUBLISHED_CONFIGS``: each pipeline's class and its transformer / VAE config values (``*_KEYS``)."""
    return {model: {"pipeline": cls, "transformer": facts(*tr, TRANSFORMER_KEYS), "vae": facts(*vae, VAE_KEYS)}
            for model, (cls, tr, vae) in PIPELINES.items()}


def table() -> dict[str, dict[str, int]]:
    t5, umt5 = tm(T5_XXL, "T5EncoderModel"), tm(UMT5_XXL, "UMT5EncoderModel")
    cog_vae, wan_vae = dm("AutoencoderKLCogVideoX", {}), dm("AutoencoderKLWan", {})
    wan14 = dm("WanTransformer3DModel", WAN_14B)
    qwen7b = tm(QWEN25VL_7B)
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
        "Lightricks/LTX-2": {"transformer": dm("LTX2VideoTransformer3DModel", LTX2_TRANSFORMER),
                             "connectors": dm("LTX2TextConnectors", LTX2_CONNECTORS),
                             "text_encoder": tm(GEMMA3_12B), "vae": dm("AutoencoderKLLTX2Video", LTX2_VAE),
                             "audio_vae": dm("AutoencoderKLLTX2Audio", LTX2_AUDIO_VAE),
                             "vocoder": dm("LTX2Vocoder", LTX2_VOCODER)},
        "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers": {
            "transformer": dm("Kandinsky5Transformer3DModel", K5_LITE), "text_encoder": qwen7b,
            "text_encoder_2": tm(CLIP_L, "CLIPTextModel"), "vae": dm("AutoencoderKLHunyuanVideo", {})},
        "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": {
            "transformer": dm("SkyReelsV2Transformer3DModel", SKYREELS_14B), "text_encoder": umt5, "vae": wan_vae},
        "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": {
            "transformer": dm("SkyReelsV2Transformer3DModel", SKYREELS_DF_1_3B), "text_encoder": umt5, "vae": wan_vae},
        "Efficient-Large-Model/SANA-Video_2B_480p_diffusers": {
            "transformer": dm("SanaVideoTransformer3DModel", SANA_VIDEO_2B), "text_encoder": tm(GEMMA2_2B, "Gemma2Model"),
            "vae": wan_vae},
        "nvidia/Cosmos-Predict2.5-2B": {"transformer": dm("CosmosTransformer3DModel", COSMOS25_2B),
                                        "text_encoder": qwen7b, "vae": wan_vae},
        "Motif-Technologies/Motif-Video-2B": {"transformer": dm("MotifVideoTransformer3DModel", MOTIF_2B),
                                              "text_encoder": tm(T5GEMMA2_4B, "T5Gemma2Encoder"), "vae": wan_vae},
        "Qwen/Qwen2.5-VL-3B-Instruct": {"model": tm(QWEN25VL_3B)},
        "Qwen/Qwen2.5-VL-7B-Instruct": {"model": qwen7b},
        "TIGER-Lab/VideoScore2": {"model": qwen7b},  # a full fine-tune of Qwen2.5-VL-7B-Instruct
        "Qwen/Qwen3-VL-4B-Instruct": {"model": tm(QWEN3VL_4B)},
        "Qwen/Qwen3-VL-8B-Instruct": {"model": tm(QWEN3VL_8B)},
        "videophysics/videocon_physics": {"model": owl},
        "videophysics/videophy_2_auto": {"model": owl},
    }


if __name__ == "__main__":
    json.dump({"params": table(), "configs": configs()}, sys.stdout, indent=1)
    print()
