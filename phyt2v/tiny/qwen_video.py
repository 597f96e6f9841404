"""Tiny random-weight pipelines with Qwen2.5-VL text encoders: Kandinsky 5 (plus CLIP), Cosmos Predict 2.5 and
HunyuanVideo 1.5 (plus ByT5), after diffusers' own tests' ``get_dummy_components``; the Qwen tokenizer is the
word-level one with Qwen's chat specials and template (the tests download a tiny Qwen2-VL tokenizer)."""

from __future__ import annotations

from pathlib import Path

from .text import seeded, word_tokenizer
from .vlm import VLM_CHAT_TEMPLATE

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "\n")


def qwen_tokenizer(max_length: int = 4096):
    """Qwen chat specials (and a newline token) and chat template (system / user turns, string or text-part content)
    over a word-piece vocabulary: the common words whole, any other word in letters, as a BPE splits rare words (so
    the pipelines' fixed template crops, 108 and 128 tokens, fall inside their templates as with Qwen's own)."""
    import string

    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from .text import WORDS, make_vocab

    chars = list(string.ascii_lowercase + string.digits)
    pieces = sorted(set(WORDS)) + chars + [f"##{c}" for c in chars] + list(string.punctuation)
    vocab = make_vocab(pieces, ["<pad>", "<unk>", *QWEN_SPECIALS])
    tk = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=100))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>",
                                  eos_token="<|im_end|>", model_max_length=max_length)
    tok.chat_template = VLM_CHAT_TEMPLATE
    return tok


def _qwen_text(hidden: int, tok, *, vl: bool):
    """A 2-layer Qwen2.5-VL (``vl``: with its vision tower, as Kandinsky 5 and Cosmos load it) or its text model."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    text = dict(hidden_size=hidden, intermediate_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=4096, rope_theta=1000000.0,
                bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"), eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                pad_token_id=tok.pad_token_id,
                rope_scaling={"mrope_section": [1, 1, 2] if hidden == 16 else [2, 2, 4], "rope_type": "default",
                              "type": "default"})
    seeded(0)
    if not vl:
        return Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(**text))
    ids = len(tok)  # vision token ids past the vocabulary: never produced by the word tokenizer
    return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config=text, vision_config=dict(depth=2, hidden_size=hidden, intermediate_size=hidden, num_heads=2,
                                             out_hidden_size=hidden),
        vision_start_token_id=ids, vision_end_token_id=ids + 1, vision_token_id=ids + 2, image_token_id=ids + 3,
        video_token_id=ids + 4))


def build_tiny_kandinsky5(path: str | Path) -> Path:
    """Kandinsky 5 T2V: 1+2-block transformer (patch 2), HunyuanVideo VAE (x8, 4k+1 frames; sides x16), Qwen2.5-VL
    (512 tokens after the pipeline's 128-token template crop) and a 2-layer CLIP (77 tokens, pooled only)."""
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5T2VPipeline,
        Kandinsky5Transformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = qwen_tokenizer()
    tok2 = word_tokenizer(["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                           eos="<|endoftext|>", max_length=77)
    seeded(0)
    vae = AutoencoderKLHunyuanVideo(  # four blocks: really x8 / x4, as its config says (the tests' two-block one is not)
        in_channels=3, out_channels=3, latent_channels=16, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=False)
    text_encoder = _qwen_text(32, tok, vl=True)
    seeded(0)
    text_encoder_2 = CLIPTextModel(CLIPTextConfig(
        bos_token_id=2, eos_token_id=3, hidden_size=16, intermediate_size=16, num_attention_heads=2,
        num_hidden_layers=2, pad_token_id=0, vocab_size=len(tok2), projection_dim=16, max_position_embeddings=77))
    seeded(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=16, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=16, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(1, 1, 2), visual_cond=False,
        attention_type="regular")
    pipe = Kandinsky5T2VPipeline(transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tok,
                                 text_encoder_2=text_encoder_2, tokenizer_2=tok2,
                                 scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_cosmos(path: str | Path) -> Path:
    """Cosmos Predict 2.5: 2-block transformer (patch 2; sides x16, 4k+1 frames, up to 4 latent frames of 32x32),
    Wan VAE (x8), Qwen2.5-VL (512 tokens including its chat template), a pass-through safety checker."""
    from diffusers import Cosmos2_5_PredictBasePipeline, CosmosTransformer3DModel, UniPCMultistepScheduler

    from .cosmos_guard import PassThroughSafetyChecker
    from .wan_video import wan_vae

    tok = qwen_tokenizer()
    seeded(0)
    transformer = CosmosTransformer3DModel(
        in_channels=17, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=False, extra_pos_embed_type="learnable")  # True (the real one's) needs torchvision
    pipe = Cosmos2_5_PredictBasePipeline(text_encoder=_qwen_text(16, tok, vl=True), tokenizer=tok,
                                         transformer=transformer, vae=wan_vae(), scheduler=UniPCMultistepScheduler(),
                                         safety_checker=PassThroughSafetyChecker())
    pipe.save_pretrained(str(path))
    return Path(path)


def build_tiny_hunyuan15(path: str | Path) -> Path:
    """HunyuanVideo 1.5: 1-layer transformer (target size 16), a 2-level VAE (x4 spatial, x2 temporal: 2k+1 frames),
    Qwen2.5-VL text model (1000 tokens after the 108-token template crop), a T5 for ByT5's glyph texts, CFG guider."""
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    tok = qwen_tokenizer()
    seeded(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1, num_refiner_layers=1,
        mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=32, image_embed_dim=12,
        rope_axes_dim=(2, 2, 4), target_size=16, task_type="t2v")
    seeded(0)
    vae = AutoencoderKLHunyuanVideo15(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16),
                                      layers_per_block=1, spatial_compression_ratio=4, temporal_compression_ratio=2,
                                      downsample_match_channel=False, upsample_match_channel=False)
    byt5 = ByT5Tokenizer()
    seeded(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(byt5), d_model=32, d_ff=37, d_kv=8, num_layers=2,
                                             num_heads=4, relative_attention_num_buckets=8))
    pipe = HunyuanVideo15Pipeline(text_encoder=_qwen_text(16, tok, vl=False), tokenizer=tok, transformer=transformer,
                                  vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                                  text_encoder_2=text_encoder_2, tokenizer_2=byt5,
                                  guider=ClassifierFreeGuidance(guidance_scale=1.0))
    pipe.save_pretrained(str(path))
    return Path(path)
