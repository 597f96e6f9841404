"""CLIP ViT-L/14 vision encoder with mPLUG-Owl-Video's temporal modules.

Module and parameter names follow the published checkpoint (``vision_model.*``).
Input: pixels (B, 3, T, H, W). Output: (B, T, 1 + (H/14)*(W/14), hidden).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import VisionConfig


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back, as the reference does in bf16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class VisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        d = cfg.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.patch_embed = nn.Conv2d(3, d, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        n = (cfg.image_size // cfg.patch_size) ** 2
        self.position_embedding = nn.Parameter(torch.zeros(1, n + 1, d))
        self.pre_layernorm = LayerNormFp32(d, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = pixels.shape
        x = pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b * t, 1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        x = x + self.position_embedding[:, : x.size(1)].to(x.dtype)
        x = self.pre_layernorm(x)
        return x.reshape(b, t, x.size(1), x.size(2))


class VisionLocalTemporal(nn.Module):
    """Depthwise temporal convolution (kernel 3 over frames) in a bottleneck, added per layer."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        d, half = cfg.hidden_size, cfg.hidden_size // 2
        self.grid = cfg.image_size // cfg.patch_size
        self.ln = LayerNormFp32(d)  # default eps (1e-5), as published
        self.down_proj = nn.Conv3d(d, half, kernel_size=1)
        self.conv = nn.Conv3d(half, half, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=half)
        self.up_proj = nn.Conv3d(half, d, kernel_size=1)
        self.activation_func = QuickGELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        cls, x = x[:, :, :1], x[:, :, 1:]
        x = self.ln(x).reshape(b, t, self.grid, self.grid, d).permute(0, 4, 1, 2, 3)  # b c t h w
        x = self.down_proj(x)
        if self.conv.weight.dtype == torch.bfloat16:  # the reference runs this conv in fp16 under bf16
            x = F.conv3d(x.half(), self.conv.weight.half(), self.conv.bias.half(), padding=(1, 0, 0),
                         groups=self.conv.groups).to(cls.dtype)
        else:
            x = self.conv(x)
        x = self.up_proj(self.activation_func(x))
        x = x.permute(0, 2, 3, 4, 1).reshape(b, t, n - 1, d)
        return torch.cat([cls, x], dim=2)


class VisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query_key_value = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        # the fused projection is laid out per head as (q, k, v)
        qkv = self.query_key_value(x).reshape(b, s, self.heads, 3, d // self.heads).permute(3, 0, 2, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.dense(out.transpose(1, 2).reshape(b, s, d))


class VisionMLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.activation_fn = QuickGELU()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class VisionEncoderLayer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.temporal = VisionLocalTemporal(cfg)
        self.self_attn = VisionAttention(cfg)
        self.input_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)
        self.post_attention_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        if t > 1:
            x = x + self.temporal(x)
        x = x.reshape(b * t, n, d)
        x = x + self.self_attn(self.input_layernorm(x))
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x.reshape(b, t, n, d)


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([VisionEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionModel(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg)
        self.post_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() == 4:  # a single image: one frame
            pixels = pixels.unsqueeze(2)
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))
