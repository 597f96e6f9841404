"""The visual abstractor: 64 learned queries (plus 64 temporal queries for video) cross-attend to
all frame tokens; the result is projected to the LLM width and closed by an end token (``vit_eos``).

Module and parameter names follow the published checkpoint (``abstractor.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import AbstractorConfig
from .vision import LayerNormFp32


def _ffn_width(intermediate: int) -> int:
    """The published rule: 2/3 of the intermediate size rounded up to a multiple of 256 (4096 -> 2816)."""
    if intermediate == 2816:
        return intermediate
    width = int(2 * intermediate / 3)
    return 256 * ((width + 255) // 256)


class AbstractorMLP(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        hidden = _ffn_width(cfg.intermediate_size)
        self.act = nn.SiLU()
        self.w1 = nn.Linear(cfg.hidden_size, hidden)
        self.w2 = nn.Linear(hidden, cfg.hidden_size)
        self.w3 = nn.Linear(cfg.hidden_size, hidden)
        self.ffn_ln = LayerNormFp32(hidden, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(self.act(self.w1(x)) * self.w3(x)))


class AbstractorMultiHeadAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        return x.reshape(b, s, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(queries)), self._split(self.key(context)), self._split(self.value(context))
        out = F.scaled_dot_product_attention(q, k, v)  # every position is real: no mask
        b, h, s, hd = out.shape
        return out.transpose(1, 2).reshape(b, s, h * hd)


class AbstractorCrossOutput(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm2 = LayerNormFp32(cfg.hidden_size)
        self.mlp = AbstractorMLP(cfg)

    def forward(self, attended: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = residual + self.out_proj(attended)
        return x + self.mlp(self.norm2(x))


class AbstractorAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.attention = AbstractorMultiHeadAttention(cfg)
        self.output = AbstractorCrossOutput(cfg)
        self.norm1 = LayerNormFp32(cfg.hidden_size)
        self.normk = LayerNormFp32(cfg.hidden_size)

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        queries = self.norm1(queries)
        context = torch.cat([queries, self.normk(frames)], dim=1)  # queries attend to themselves too
        return self.output(self.attention(queries, context), queries)


class AbstractorLayer(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.crossattention = AbstractorAttention(cfg)

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.crossattention(queries, frames)


class AbstractorEncoder(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.layers = nn.ModuleList([AbstractorLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class AbstractorModel(nn.Module):
    def __init__(self, cfg: AbstractorConfig, language_hidden_size: int):
        super().__init__()
        self.encoder = AbstractorEncoder(cfg)
        self.visual_fc = nn.Linear(cfg.hidden_size, language_hidden_size)
        self.temporal_visual_fc = nn.Linear(cfg.hidden_size, language_hidden_size)
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, language_hidden_size))

    def forward(self, queries: torch.Tensor, temporal_queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """queries, temporal_queries: (B, Q, D); frames: (B, T, N, D) -> (B, Q + 1, language width)."""
        b, t, n, d = frames.shape
        nq = queries.size(1)
        x = queries if t == 1 else torch.cat([queries, temporal_queries], dim=1)
        frames = frames.reshape(b, t * n, d)
        for layer in self.encoder.layers:
            x = layer(x, frames)
        out = self.visual_fc(x[:, :nq])
        if t > 1:
            out = out + self.temporal_visual_fc(x[:, nq:])
        return torch.cat([out, self.vit_eos.expand(b, 1, -1).to(out.dtype)], dim=1)
