"""Tiny random-weight Wan, LTX-Video, HunyuanVideo and Mochi pipelines (configs after diffusers' own tests'
``get_dummy_components``), saved with ``save_pretrained`` so backends load them through the real
``from_pretrained`` path. Noise out: for exercising code only."""

from __future__ import annotations

from pathlib import Path

from .text import seeded, t5_encoder, t5_tokenizer, word_tokenizer

# HunyuanVideo's default prompt template uses these Llama-3 header tokens.
LLAMA_SPECIALS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def _wan_transformer():
    from diffusers import WanTransformer3DModel

    seeded(0)
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                 in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                 num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                 rope_max_seq_len=32)


def build_tiny_wan(path: str | Path, *, experts: int = 1) -> Path:
    """A WanPipeline: 2-block transformer (2 heads x 12), 3-level Wan VAE, 2-layer UMT5, UniPC with flow
    shift 3. Frames 4k+1, sides multiples of 16; 512 tokens like the real one. ``experts=2`` adds a
    low-noise ``transformer_2`` and ``boundary_ratio`` 0.875, like Wan 2.2 A14B."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline

    tokenizer = t5_tokenizer()
    seeded(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    extra = {}
    if experts == 2:
        second = _wan_transformer()
        seeded(1)
        for p in second.parameters():  # a different expert
            p.data.add_(0.01 * __import__("torch").randn_like(p))
        extra = {"transformer_2": second, "boundary_ratio": 0.875}
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=t5_encoder(tokenizer, umt5=True), vae=vae,
                       transformer=_wan_transformer(), scheduler=scheduler, **extra)
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_ltx(path: str | Path) -> Path:
    """An LTXPipeline: 1-layer transformer, VAE x4 spatial/temporal (sides must still be multiples of 32,
    LTX's check_inputs), 2-layer T5 with 128 tokens."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = t5_tokenizer(max_length=128)
    seeded(0)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    seeded(0)
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, False, False),
                                decoder_spatio_temporal_scaling=(True, True, False, False),
                                decoder_inject_noise=(False, False, False, False, False),
                                upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
                                timestep_conditioning=False, patch_size=1, patch_size_t=1,
                                encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    pipe = LTXPipeline(tokenizer=tokenizer, text_encoder=t5_encoder(tokenizer), vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_hunyuan(path: str | Path) -> Path:
    """A HunyuanVideoPipeline: 1+1-layer transformer (patch 1), 4-block VAE (x8, 4k+1 frames), 2-layer Llama
    (256 tokens after the template crop, its header tokens as specials) and 2-layer CLIP (77 tokens)."""
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tok = word_tokenizer(["<pad>", "<unk>", *LLAMA_SPECIALS], bos="<|begin_of_text|>", max_length=4096,
                          added=LLAMA_SPECIALS)
    tok2 = word_tokenizer(["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                           eos="<|endoftext|>", max_length=77)
    seeded(0)
    transformer = HunyuanVideoTransformer3DModel(in_channels=4, out_channels=4, num_attention_heads=2,
                                                 attention_head_dim=10, num_layers=1, num_single_layers=1,
                                                 num_refiner_layers=1, patch_size=1, patch_size_t=1,
                                                 guidance_embeds=True, text_embed_dim=16, pooled_projection_dim=8,
                                                 rope_axes_dim=(2, 4, 4))
    seeded(0)
    vae = AutoencoderKLHunyuanVideo(in_channels=3, out_channels=3, latent_channels=4,
                                    down_block_types=("HunyuanVideoDownBlock3D",) * 4,
                                    up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                    layers_per_block=1, act_fn="silu", norm_num_groups=4, scaling_factor=0.476986,
                                    spatial_compression_ratio=8, temporal_compression_ratio=4,
                                    mid_block_add_attention=True)
    seeded(0)
    text_encoder = LlamaModel(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=37,
                                          num_attention_heads=4, num_hidden_layers=2, hidden_act="gelu",
                                          max_position_embeddings=4096, pad_token_id=0, bos_token_id=2))
    seeded(0)
    text_encoder_2 = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok2), hidden_size=8, intermediate_size=37,
                                                  num_attention_heads=4, num_hidden_layers=2, projection_dim=32,
                                                  hidden_act="gelu", max_position_embeddings=77,
                                                  pad_token_id=0, bos_token_id=2, eos_token_id=3))
    pipe = HunyuanVideoPipeline(tokenizer=tok, text_encoder=text_encoder, tokenizer_2=tok2,
                                text_encoder_2=text_encoder_2, vae=vae, transformer=transformer,
                                scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_mochi(path: str | Path) -> Path:
    """A MochiPipeline (after diffusers' tests): 2-block transformer (patch 2), 4-block VAE (x8 spatial, x6 temporal:
    6k+1 frames, sides x16), 2-layer T5 with 256 tokens (the transformer's text length set to match)."""
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel

    tokenizer = t5_tokenizer(max_length=256)
    seeded(0)
    transformer = MochiTransformer3DModel(patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                                          pooled_projection_dim=16, in_channels=12, out_channels=None, qk_norm="rms_norm",
                                          text_embed_dim=32, time_embed_dim=4, activation_fn="swiglu",
                                          max_sequence_length=256)
    transformer.pos_frequencies.data = transformer.pos_frequencies.new_full(transformer.pos_frequencies.shape, 0)
    seeded(0)
    vae = AutoencoderKLMochi(latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
                             decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1))
    pipe = MochiPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=t5_encoder(tokenizer),
                         tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(str(path))
    return Path(path)
