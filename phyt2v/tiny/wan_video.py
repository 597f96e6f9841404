"""Tiny random-weight pipelines on the Wan VAE: SkyReels-V2 (plain and diffusion forcing), Sana-Video and
Motif-Video, after diffusers' own tests' ``get_dummy_components`` (``tests/pipelines/<family>/``); their text encoders
are built from configs (the tests download tiny T5 / Gemma tokenizers) with the word-level tokenizer."""

from __future__ import annotations

from pathlib import Path

from .text import seeded, t5_encoder, t5_tokenizer, word_tokenizer


def wan_vae():
    """The tests' 3-level Wan VAE: x8 spatial, x4 temporal (4k+1 frames), 16 latent channels."""
    from diffusers import AutoencoderKLWan

    seeded(0)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def build_tiny_skyreels(path: str | Path, *, forcing: bool = False) -> Path:
    """SkyReels-V2 (Wan architecture): 2-block transformer (2 heads x 12, patch 2: sides x16, 4k+1 frames), UMT5
    with 512 tokens, UniPC with flow shift 8 (the T2V cards'). ``forcing``: the diffusion-forcing pipeline."""
    from diffusers import (
        SkyReelsV2DiffusionForcingPipeline,
        SkyReelsV2Pipeline,
        SkyReelsV2Transformer3DModel,
        UniPCMultistepScheduler,
    )

    tok = t5_tokenizer()
    seeded(0)
    transformer = SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32)
    cls = SkyReelsV2DiffusionForcingPipeline if forcing else SkyReelsV2Pipeline
    pipe = cls(tokenizer=tok, text_encoder=t5_encoder(tok, umt5=True), transformer=transformer, vae=wan_vae(),
               scheduler=UniPCMultistepScheduler(flow_shift=8.0, use_flow_sigmas=True,
                                                 prediction_type="flow_prediction"))
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_sana_video(path: str | Path) -> Path:
    """Sana-Video: 2-block linear-attention transformer (patch 2; sides x32 by check_inputs, 4k+1 frames), a 1-layer
    Gemma-2 (300 tokens, the complex human instruction prepended as the pipeline does), DPM-Solver."""
    from diffusers import DPMSolverMultistepScheduler, SanaVideoPipeline, SanaVideoTransformer3DModel
    from transformers import Gemma2Config, Gemma2Model

    tok = word_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>"], bos="<bos>", eos=None, max_length=8192)
    seeded(0)
    text_encoder = Gemma2Model(Gemma2Config(head_dim=16, hidden_size=8, intermediate_size=64,
                                            max_position_embeddings=8192, num_attention_heads=2, num_hidden_layers=1,
                                            num_key_value_heads=2, vocab_size=len(tok), pad_token_id=0,
                                            attn_implementation="eager"))
    seeded(0)
    transformer = SanaVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24, caption_channels=8,
        mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=8, patch_size=(1, 2, 2),
        norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    pipe = SanaVideoPipeline(tokenizer=tok, text_encoder=text_encoder, vae=wan_vae(), transformer=transformer,
                             scheduler=DPMSolverMultistepScheduler())
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_motif(path: str | Path) -> Path:
    """Motif-Video: 1+1-layer transformer (patch 1: sides x8, 4k+1 frames), a 1-layer T5Gemma2 encoder with the T5
    tokenizer (512 tokens), adaptive projected guidance on ``pipe.guider``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, MotifVideoPipeline, MotifVideoTransformer3DModel
    from diffusers.guiders import AdaptiveProjectedGuidance
    from transformers import T5Gemma2Encoder, T5Gemma2EncoderConfig, T5Gemma2TextConfig

    tok = t5_tokenizer()
    seeded(0)
    text_encoder = T5Gemma2Encoder(T5Gemma2EncoderConfig(text_config=T5Gemma2TextConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=len(tok),
        max_position_embeddings=1024, head_dim=16, num_key_value_heads=2, dropout_rate=0.0)))
    seeded(0)
    transformer = MotifVideoTransformer3DModel(
        in_channels=33, out_channels=16, num_attention_heads=2, attention_head_dim=12, num_layers=1,
        num_single_layers=1, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm", text_embed_dim=32,
        rope_axes_dim=(4, 4, 4))
    pipe = MotifVideoPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), vae=wan_vae(),
                              text_encoder=text_encoder, tokenizer=tok, transformer=transformer,
                              guider=AdaptiveProjectedGuidance(), feature_extractor=None)
    pipe.save_pretrained(str(path))
    return Path(path)
