"""A tiny Qwen2.5-VL (2 text layers, hidden 64, vision depth 2) that answers in VideoScore2's reply format: the
``videoscore2`` scorer's model under ``model: tiny`` (the smoke preset), so verifier ensembles run offline.

Its vision tower and transformer layers are random. Its token embeddings and LM head are set so that the next
token follows from the current one (a bigram script: the attention and MLP outputs are scaled down, so the hidden
state is mostly the current token's embedding) and the reply reads, as the VideoScore2 model card's format::

    visual quality: 3; text-to-video alignment: 4, physical/common-sense consistency: 3

Each score is one of two or three digits whose logits lie close together; the small residual that the random
layers add from the video's frames tips the balance, so different videos get different scores. Its numbers
are noise: use it to exercise code, never to judge a video.
"""

from __future__ import annotations

from pathlib import Path

from .text import seeded
from .vlm import VLM_SPECIALS, save_tiny_vlm, vlm_tokenizer

LABELS = ("visual quality:", "text-to-video alignment:", "physical/common-sense consistency:")
SEPARATORS = (";", ",", "")  # after each score, as the card's format writes them
# Logit offsets of the digits 1..5 at each score (close together: the video's residual decides among them).
LEANINGS = ((0.0, 0.2, 1.0, 0.8, 0.0), (0.0, 0.0, 0.7, 1.0, 0.6), (0.0, 0.6, 1.0, 0.7, 0.0))
SCRIPT = 24.0      # logit of the scripted next token (every other token: 0)
RESIDUAL = 3.0     # scale of the attention and MLP outputs: how much the frames and the prompt move the hidden state
JITTER = 1.0       # a random direction added to each score token's LM-head row, read off that movement


def judge_tokenizer():
    """The tiny VLM's tokenizer plus whole tokens for the three labels and the scores with their separators
    ("3;", "4,", "3"), so that every token of the reply is followed by exactly one scripted token."""
    from tokenizers import AddedToken

    tok = vlm_tokenizer()
    extra = list(LABELS) + [f"{d}{sep}" for sep in SEPARATORS for d in "12345"]
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in extra if t not in tok.get_vocab()])
    return tok


def _script(tok) -> list[tuple[int, dict[int, tuple[float, int | None]]]]:
    """(current token id, {next token id: (logit, the digit it writes or None)}) for every step of the reply."""
    tid = tok.convert_tokens_to_ids
    start = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-1]
    steps: list[tuple[int, dict[int, tuple[float, int | None]]]] = []
    current = [start]
    for label, sep, lean in zip(LABELS, SEPARATORS, LEANINGS):
        for c in current:
            steps.append((c, {tid(label): (SCRIPT, None)}))
        scores = {tid(f"{d}{sep}"): (SCRIPT + lean[d - 1], d) for d in range(1, 6)}
        if sep:  # the plain digits carry the same leaning, for the soft score read at this position (high enough to
            # stay among a sampler's top-k, low enough never to be generated)
            scores.update({tid(str(d)): (SCRIPT / 2 + lean[d - 1], d) for d in range(1, 6)})
        steps.append((tid(label), scores))
        current = [tid(f"{d}{sep}") for d in range(1, 6)]
    for c in current:
        steps.append((c, {tid("<|im_end|>"): (SCRIPT, None)}))
    return steps


def build_tiny_qwen25vl(path: str | Path) -> Path:
    """The tiny scripted Qwen2.5-VL, saved like the tiny Qwen2-VL (tokenizer, chat template, PIL image processor)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = judge_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in VLM_SPECIALS}
    hidden = 64
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False,
            rope_scaling={"type": "mrope", "mrope_section": [2, 2, 4]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=hidden,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    seeded(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    steps = _script(tok)
    sources = list(dict.fromkeys(c for c, _ in steps))
    if len(sources) > hidden:
        raise ValueError(f"the script has {len(sources)} states but the hidden size is {hidden}")
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        basis = torch.eye(hidden)
        for i, c in enumerate(sources):  # each scripted token: one axis of the hidden space
            emb[c] = basis[i]
        head.zero_()
        scale = hidden ** -0.5  # RMSNorm turns a unit axis into sqrt(hidden) along it
        # one random direction per digit, away from the script's axes: every token that writes digit d moves by the
        # same amount when the frames and the prompt move the hidden state, so the digits' order is the same among
        # "d;" (what is generated) and "d" (what the soft score reads)
        jitter = {d: JITTER * scale * torch.randn(hidden) for d in range(1, 6)}
        for j in jitter.values():
            j[: len(sources)] = 0.0
        digits = {}
        for c, targets in steps:
            axis = basis[sources.index(c)] * scale
            for t, (logit, digit) in targets.items():
                head[t] += logit * axis
                if digit is not None:
                    digits[t] = digit
        for t, d in digits.items():
            head[t] += jitter[d]
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.mul_(RESIDUAL)
            layer.mlp.down_proj.weight.mul_(RESIDUAL)
    return save_tiny_vlm(model, tok, path, Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16))
