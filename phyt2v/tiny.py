"""Tiny random-weight models (CogVideoX, Wan, LTX-Video and HunyuanVideo pipelines, Qwen2-VL) for tests
and smoke runs.

They are built from configs with a fixed torch seed, saved with ``save_pretrained`` and
loaded back by the backends through their normal ``from_pretrained`` path. Their outputs are
noise: use them to exercise code, never to judge quality.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

VERSION = "v2"  # bump when a recipe below changes, so stale caches are not reused
KINDS = ("cogvideox", "wan", "ltx", "hunyuan", "vlm")

# A small word-level vocabulary: common English plus the words physics prompts use.
# Anything else maps to the unknown token.
WORDS = """
a an the this that these those it its is are was were be been being has have had do does did
not no yes and or but if then so as of in on at to from by with without into onto over under
up down out off through across along around between against after before during while when
where which who what how why all each every some any many much more most few one two three
i you he she we they me him her us them my your his our their there here very also just only
than too again still now once other same such own new old big small large little long short
tall wide thin thick heavy light hot cold warm wet dry soft hard smooth rough full empty high
low fast slow quick slowly quickly gently suddenly red blue green white black yellow brown
clear bright dark round flat sharp glass metal wood wooden plastic paper rubber stone steel
ice water milk juice coffee tea oil honey sand mud snow rain smoke fire steam air wind wave
ball cup mug bottle jar bowl plate glass pot pan spoon fork knife spatula brush sponge towel
table floor ground wall window door car wheel tire road box bag rope string chain spring
cake batter dough bread egg soup sauce shampoo soap foam bubble bubbles drop drops liquid
solid object objects surface edge side top bottom center front back left right inside outside
man woman person hand hands finger fingers arm leg foot head child dog cat bird fish tree
leaf leaves flower grass rock hill river lake sea pool kitchen room street table chair
falls fall falling fell drops dropped rolls roll rolling bounces bounce bouncing slides
slide sliding flows flow flowing pours pour pouring splashes splash spills spill melts melt
melting breaks break breaking shatters shatter cracks crack bends bend bending stretches
stretch squeezes squeeze presses press pushes push pulls pull lifts lift throws throw
catches catch hits hit strikes collides collide touches touch rests rest sits sit stands
stand moves move moving turns turn spins spin rotates rotate swings swing floats float
sinks sink rises rise fills fill empties stirs stir scoops scoop mixes mix cuts cut tears
tear folds fold burns burn freezes freeze boils boil drips drip leaks leak sprays spray
lathers lather wipes wipe washes wash scrubs scrub shakes shake waves blows blow walks walk
runs run jumps jump holds hold grabs grab places place puts put takes take makes make shows
video scene camera frame frames shot view motion movement contact deformation shape force
gravity friction speed direction weight pressure physics physical law laws rule rules follow
follows obey obeys real realistic natural description describe describes entail entails
caption prompt image images first second third last end begin begins starts ends
""".split()


def _vocab(words: list[str], specials: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for w in specials + words:
        vocab.setdefault(w, len(vocab))
    return vocab


def _seeded(seed: int = 0):
    import torch

    torch.manual_seed(seed)


def _word_tokenizer(specials: list[str], *, bos: str | None = None, eos: str | None = None,
                    pad: str = "<pad>", unk: str = "<unk>", max_length: int = 512, added: tuple[str, ...] = ()):
    """A lowercasing word-level tokenizer over WORDS: serves the T5/UMT5 (eos appended), Llama (bos
    prepended) and CLIP (both) slots of the video pipelines."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = _vocab(sorted(set(WORDS)) + list(".,!?;:'\"-()"), specials)
    tk = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    single = " ".join(x for x in (bos, "$A", eos) if x)
    tk.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(t, vocab[t]) for t in (bos, eos) if t])
    if added:
        tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    kw = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v}
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token=pad, unk_token=unk, model_max_length=max_length,
                                   **kw)


def _t5_tokenizer(max_length: int = 512):
    """Word-level, lowercasing, T5 conventions (pad 0, eos 1 appended, unk 2)."""
    return _word_tokenizer(["<pad>", "</s>", "<unk>"], eos="</s>", max_length=max_length)


def _t5_encoder(tokenizer, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    cfg_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    _seeded(0)
    return model_cls(cfg_cls(vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                             relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                             decoder_start_token_id=0))


def build_tiny_cogvideox(path: str | Path) -> Path:
    """A ~100 kB CogVideoXPipeline: 2-layer transformer (4 heads x 8), 4-block VAE, 5-layer T5.

    Frames must be 8k+1 and sides multiples of 16 (VAE x8, patch 2); prompts hold 64 tokens.
    """
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline,
                           CogVideoXTransformer3DModel)
    from transformers import T5Config, T5EncoderModel

    tokenizer = _t5_tokenizer()
    _seeded(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=2, sample_width=2, sample_height=2, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=64)
    _seeded(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    _seeded(0)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=5, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    scheduler = CogVideoXDDIMScheduler(timestep_spacing="trailing")
    pipe = CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                             transformer=transformer, scheduler=scheduler)
    pipe.save_pretrained(str(path))
    return Path(path)


VLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]

# Qwen-style chat template: images/videos become <|vision_start|><|image_pad|><|vision_end|>.
VLM_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _vlm_tokenizer():
    """Word-level, case-kept (so 'Yes' and 'No' are single tokens), Qwen chat specials."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(WORDS)) + sorted({w.capitalize() for w in WORDS}) + list(".,!?;:'\"-()")
    vocab = _vocab(words, ["<unk>"])
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in VLM_SPECIALS])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>", model_max_length=4096)
    tok.chat_template = VLM_CHAT_TEMPLATE
    return tok


def build_tiny_vlm(path: str | Path) -> Path:
    """A tiny Qwen2-VL (2 text layers, hidden 32, vision depth 2) with tokenizer, PIL image
    processor (<= 16 visual tokens per image) and chat template."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(path)
    tok = _vlm_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in VLM_SPECIALS}
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    _seeded(0)
    return save_tiny_vlm(Qwen2VLForConditionalGeneration(config), tok, path,
                         Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16))


def save_tiny_vlm(model, tok, path: str | Path, image_processor) -> Path:
    """Save a tiny Qwen-VL-style model with the word-level tokenizer, the chat template and its image
    processor, ending generation at ``<|im_end|>``; returns the folder."""
    path = Path(path)
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    (path / "chat_template.jinja").write_text(VLM_CHAT_TEMPLATE, encoding="utf-8")
    image_processor.save_pretrained(str(path))
    return path


def _family(name: str):
    def build(path: str | Path) -> Path:
        from . import tiny_families

        return getattr(tiny_families, f"build_tiny_{name}")(path)
    return build


_BUILDERS = {"cogvideox": build_tiny_cogvideox, "wan": _family("wan"), "ltx": _family("ltx"),
             "hunyuan": _family("hunyuan"), "vlm": build_tiny_vlm}


def cache_root() -> Path:
    from .resources import cache_dir
    return cache_dir("tiny")


def tiny_model_dir(kind: str) -> Path:
    """Build the tiny model ``kind`` once into the cache and return its folder.

    Built in a temporary sibling folder and renamed into place, so concurrent processes never
    see a half-written model (the loser of a race discards its copy).
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny model '{kind}'; choose one of {', '.join(KINDS)}")
    final = cache_root() / f"{kind}-{VERSION}"
    marker = final / ".complete"
    if marker.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=final.parent))
    try:
        _BUILDERS[kind](tmp)
        (tmp / ".complete").write_text(VERSION, encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not marker.is_file():  # a stale, incomplete folder: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
