"""A tiny random-weight mPLUG-Owl-Video checkpoint in the published layout, for tests and smoke
runs: the whole architecture (temporal modules, 64 queries, LLaMA), a few layers wide 32-64,
and a small LLaMA-style sentencepiece tokenizer trained on the spot (offline)."""

from __future__ import annotations

import json
from pathlib import Path

from .config import AbstractorConfig, MplugOwlConfig, VisionConfig
from .processor import CLIP_MEAN, CLIP_STD

_TEXT = [
    "The following is a conversation between a curious human and AI assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions.",
    "The following is a conversation between a curious human and an AI assistant.",
    "Human: Does this video entail the description: \"A wooden spoon stirs the hot soup in the pot.\"?",
    "Human: Does this video follow the physical laws?\nAI: Yes",
    "Human: Does this video match the description? Please rate the video on a scale from 1 to 5, where 5 "
    "indicates a perfect match and 1 indicates no relevance.\nAI: No",
    "Does this video adhere to the physical laws? Rate the video on a scale from 1 to 5, where 5 means "
    "full compliance and 1 means significant violations.",
    "Does the video follow the physical rule? Choose 0 if not, 1 if valid, or 2 if indeterminate.",
    "zero one two three four five 0 1 2 3 4 5 6 7 8 9 Yes No yes no",
    "An apple falls and bounces on the hard ground. Shoe squishes a bug. Coffee accepting a pour of milk.",
    "A ball rolls down a slanted ramp while water pours from a glass into a bowl.",
]


def train_tokenizer(folder: Path, vocab_size: int = 400) -> Path:
    """A LLaMA-style sentencepiece BPE model (byte fallback, dummy prefix, unk=0 bos=1 eos=2)."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_TEXT * 4), model_prefix=str(folder / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2, num_threads=1,
        user_defined_symbols=["▁Yes", "▁No"])
    (folder / "tokenizer.vocab").unlink(missing_ok=True)
    return folder / "tokenizer.model"


def tiny_config(vocab_size: int = 400, image_size: int = 224) -> MplugOwlConfig:
    return MplugOwlConfig(
        vision=VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            image_size=image_size, patch_size=14),
        abstractor=AbstractorConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, encoder_hidden_size=32),
        text=dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                  bos_token_id=1, eos_token_id=2, pad_token_id=2),
        num_query_tokens=64)


def random_model(config: MplugOwlConfig, seed: int = 0, std: float = 0.5):
    """The model with every weight drawn at random (zero-initialised parts included)."""
    import torch

    from .model import MplugOwlForConditionalGeneration

    torch.manual_seed(seed)
    model = MplugOwlForConditionalGeneration(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm.weight" in name or name.endswith(("ln.weight", "norm1.weight",
                                                                                            "normk.weight", "norm2.weight")):
                p.fill_(1.0)
            else:
                p.normal_(0.0, std / max(1.0, p.shape[-1] ** 0.5) if p.dim() > 1 else 0.02)
    return model.eval()


def build_tiny_checkpoint(folder: str | Path, *, fmt: str = "safetensors", shards: int = 1, seed: int = 0,
                          rates: bool = False) -> Path:
    """Write a complete tiny checkpoint folder and return it. ``rates``: the LLaMA answers a rating
    (``script_rating``)."""
    from .loading import save_model

    folder = Path(folder)
    tok = train_tokenizer(folder)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok))
    model = random_model(tiny_config(vocab_size=len(sp)), seed=seed)
    if rates:
        script_rating(model, sp)
    save_model(model, folder, fmt=fmt, shards=shards)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "size": 224, "do_resize": True}, indent=1))
    return folder


def build_rating_checkpoint(folder: str | Path) -> Path:
    """The checkpoint ``scorer.model: tiny`` loads (videocon, videophy2): ``build_tiny_checkpoint`` whose LLaMA
    answers VideoPhy-2's questions with one digit and stops, so smoke runs get ratings, not noise text."""
    return build_tiny_checkpoint(folder, rates=True)


# The digits' logit offsets; each digit's row in the LM head also has a random direction away from the script's axes.
RATING_LEAN = (0.0, 0.6, 1.0, 0.9, 0.3)
RATING_SCRIPT = 24.0
RATING_JITTER = 1.0    # size of each digit's random direction


def script_rating(model, sp) -> None:
    """Set the LLaMA's embeddings and LM head so that after the prompt's last token ("AI: " ends every question)
    it writes one digit 1..5 and then EOS (a bigram script: the hidden state is mostly the current token's embedding,
    one axis of the hidden space per scripted token). The other rows of the head (Yes, No: VideoCon's answer) stay
    random. The frames barely move the tiny model: its ratings are mostly the same digit; noise either way."""
    import torch

    lm = model.language_model
    emb, head = lm.get_input_embeddings().weight, lm.lm_head.weight
    hidden = emb.shape[1]
    last = sp.encode("Human: Does this video adhere to the physical laws?\nAI: ")[-1]
    digits = [sp.piece_to_id(str(d)) for d in range(1, 6)]
    sources = [last] + digits
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        basis = torch.eye(hidden)
        scale = hidden ** -0.5  # RMSNorm turns a unit axis into sqrt(hidden) along it
        for i, t in enumerate(sources):
            emb[t] = basis[i]
            head[t] = 0.0
        head[sp.eos_id()] = RATING_SCRIPT * scale * sum(basis[i] for i in range(1, len(sources)))
        for d, t in enumerate(digits):
            jitter = torch.randn(hidden, generator=gen) * scale * RATING_JITTER
            jitter[: len(sources)] = 0.0
            head[t] = (RATING_SCRIPT + RATING_LEAN[d]) * scale * basis[0] + jitter
