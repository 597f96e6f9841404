"""Where layout guidance reads a DiT's text-to-video attention, one adapter per family (``guidance.py`` uses them).

- **Wan** (2.1, 2.2): each block's cross-attention ``attn2`` (video queries, text keys; softmax over the text
  tokens). The map is recomputed beside the block's own processor from the same projections and norms
  (``to_q``/``norm_q``, ``to_k``/``norm_k``, scale ``1/sqrt(head_dim)``); the block's output is its own.
- **CogVideoX**: the joint attention ``attn1`` of each block. The text<->video part read is the video queries
  (after CogVideoX's rotary embedding) against the text keys, renormalised over the text tokens (a softmax over
  the text keys only), so it reads like a cross-attention map; the full joint attention (text and video keys) is
  not materialised.

A capture processor stores, per block, the attention of every video token to the object tokens asked for:
``(batch, heads, video tokens, object tokens)``, tokens in the transformer's (frame, row, column) order. The first
value stored for a block is kept: gradient checkpointing recomputes the block in the backward pass, and its second
pass must not replace the tensor the energy was built from.
"""

from __future__ import annotations

from typing import Any


class Capture:
    """Wraps a block's attention processor: its output unchanged, the text attention of the object tokens stored in
    ``sink[key]``."""

    def __init__(self, inner: Any, sink: dict, key: int, cols: list[int]):
        self.inner, self.sink, self.key, self.cols = inner, sink, key, cols

    def store(self, q: Any, k: Any) -> None:
        """``q`` (B, H, N video, D), ``k`` (B, H, L text, D): softmax over the text tokens, the object columns."""
        probs = (q @ k.transpose(-1, -2)).float().mul(q.shape[-1] ** -0.5).softmax(dim=-1)
        self.sink.setdefault(self.key, probs[..., self.cols])


class WanCapture(Capture):
    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 rotary_emb: Any = None, **kwargs: Any) -> Any:
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb, **kwargs)
        q = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        k = attn.norm_k(attn.to_k(encoder_hidden_states)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        self.store(q, k)
        return out


class CogVideoXCapture(Capture):
    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any, attention_mask: Any = None,
                 image_rotary_emb: Any = None) -> Any:
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        b = hidden_states.shape[0]
        q = attn.to_q(hidden_states).view(b, -1, attn.heads, attn.inner_dim // attn.heads).transpose(1, 2)
        k = attn.to_k(encoder_hidden_states).view(b, -1, attn.heads, attn.inner_dim // attn.heads).transpose(1, 2)
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            q = apply_rotary_emb(q, image_rotary_emb)
        self.store(q, k)
        return out


class Wan:
    """Latents (B, C, F, h, w); tokens (F/p_t, h/p_h, w/p_w); the conditional prompt embeddings as passed."""

    name, blocks_attr, capture = "wan", "blocks", WanCapture

    @staticmethod
    def attention(block: Any) -> Any:
        return block.attn2

    @staticmethod
    def grid(latents: Any, transformer: Any) -> tuple[int, int, int]:
        pt, ph, pw = transformer.config.patch_size
        _, _, f, h, w = latents.shape
        return f // pt, h // ph, w // pw

    @staticmethod
    def patch_t(transformer: Any) -> int:
        return int(transformer.config.patch_size[0])

    @staticmethod
    def cond(prompt_embeds: Any, batch: int) -> Any:
        return prompt_embeds

    @staticmethod
    def transformer(pipe: Any, t: Any) -> Any:
        """The expert the pipeline runs at ``t`` (Wan 2.2 A14B switches below ``boundary_ratio``)."""
        ratio = pipe.config.get("boundary_ratio")
        if ratio is None or t >= ratio * pipe.scheduler.config.num_train_timesteps or pipe.transformer_2 is None:
            return pipe.transformer
        return pipe.transformer_2

    @staticmethod
    def forward(pipe: Any, model: Any, x: Any, t: Any, cond: Any) -> None:
        import torch

        b = x.shape[0]
        if pipe.config.get("expand_timesteps"):  # Wan 2.2 TI2V: one timestep per token, as its pipeline makes them
            mask = torch.ones(x.shape[2:], device=x.device)
            timestep = (mask[:, ::2, ::2] * t).flatten().unsqueeze(0).expand(b, -1)
        else:
            timestep = t.expand(b)
        model(hidden_states=x.to(model.dtype), timestep=timestep, encoder_hidden_states=cond, return_dict=False)


class CogVideoX:
    """Latents (B, F, C, h, w); tokens (F/p_t, h/p, w/p); prompt embeddings ``[negative, positive]`` under CFG."""

    name, blocks_attr, capture = "cogvideox", "transformer_blocks", CogVideoXCapture

    @staticmethod
    def attention(block: Any) -> Any:
        return block.attn1

    @staticmethod
    def grid(latents: Any, transformer: Any) -> tuple[int, int, int]:
        p, pt = transformer.config.patch_size, transformer.config.patch_size_t or 1
        _, f, _, h, w = latents.shape
        return f // pt, h // p, w // p

    @staticmethod
    def patch_t(transformer: Any) -> int:
        return int(transformer.config.patch_size_t or 1)

    @staticmethod
    def cond(prompt_embeds: Any, batch: int) -> Any:
        return prompt_embeds[batch:] if prompt_embeds.shape[0] == 2 * batch else prompt_embeds

    @staticmethod
    def transformer(pipe: Any, t: Any) -> Any:
        return pipe.transformer

    @staticmethod
    def forward(pipe: Any, model: Any, x: Any, t: Any, cond: Any) -> None:
        _, f, _, h, w = x.shape
        rotary = None
        if model.config.use_rotary_positional_embeddings:
            s = pipe.vae_scale_factor_spatial
            rotary = pipe._prepare_rotary_positional_embeddings(h * s, w * s, f, x.device)
        model(hidden_states=x.to(model.dtype), encoder_hidden_states=cond, timestep=t.expand(x.shape[0]),
              image_rotary_emb=rotary, return_dict=False)


ADAPTERS = {"wan": Wan, "cogvideox": CogVideoX}
