"""mPLUG-Owl-Video: vision encoder -> visual abstractor -> LLaMA (transformers ``LlamaForCausalLM``).

Top-level names equal the published checkpoint: ``vision_model``, ``query_tokens``,
``temporal_query_tokens``, ``abstractor``, ``language_model``. The media positions of a
tokenised prompt (negative ids, 65 per ``<|video|>``) are replaced by the abstractor output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .abstractor import AbstractorModel
from .config import MplugOwlConfig
from .vision import VisionModel


class MplugOwlForConditionalGeneration(nn.Module):
    def __init__(self, config: MplugOwlConfig):
        super().__init__()
        from transformers import LlamaForCausalLM

        self.config = config
        nq, width = config.num_query_tokens, config.abstractor.hidden_size
        self.vision_model = VisionModel(config.vision)
        self.query_tokens = nn.Parameter(torch.zeros(1, nq, width))
        self.temporal_query_tokens = nn.Parameter(torch.zeros(1, nq, width))
        self.abstractor = AbstractorModel(config.abstractor, config.text.get("hidden_size", 4096))
        self.language_model = LlamaForCausalLM(config.llama_config())

    @property
    def device(self) -> torch.device:
        return self.query_tokens.device

    @property
    def dtype(self) -> torch.dtype:
        return self.query_tokens.dtype

    # ------------------------------------------------------------------ pieces

    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, T, H, W) -> media embeddings (B, num_query_tokens + 1, LLM width)."""
        frames = self.vision_model(pixels.to(self.device, self.dtype))
        b = frames.size(0)
        return self.abstractor(self.query_tokens.expand(b, -1, -1),
                               self.temporal_query_tokens.expand(b, -1, -1), frames)

    def embed(self, input_ids: torch.Tensor, media: torch.Tensor) -> torch.Tensor:
        """Text embeddings with each row's media positions (ids < 0) replaced by ``media[row]``."""
        input_ids = input_ids.to(self.device)
        is_media = input_ids < 0
        embeds = self.language_model.get_input_embeddings()(input_ids.clamp(min=0))
        counts = is_media.sum(dim=1).tolist()
        for row, count in enumerate(counts):
            if count == 0:
                continue
            if count != media.size(1):
                raise ValueError(f"row {row} has {count} media positions; expected {media.size(1)} "
                                 "(one <|video|> per prompt)")
            embeds[row, is_media[row]] = media[row].to(embeds.dtype)
        return embeds

    # ------------------------------------------------------------------ uses

    @torch.no_grad()
    def logits_at(self, input_ids: torch.Tensor, media: torch.Tensor, positions: list[int]) -> torch.Tensor:
        """Next-token logits (B, vocab) at one position per row. Rows are right-padded, so the
        causal mask alone keeps padding from touching the real positions (as in the reference)."""
        embeds = self.embed(input_ids, media)
        hidden = self.language_model.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        rows = torch.arange(hidden.size(0), device=hidden.device)
        picked = hidden[rows, torch.as_tensor(positions, device=hidden.device)]
        return self.language_model.lm_head(picked).float()

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, media: torch.Tensor,
                 *, max_new_tokens: int = 256, eos_token_id: int = 2, pad_token_id: int = 0) -> torch.Tensor:
        """Greedy generation from left-padded prompts; returns only the new token ids."""
        embeds = self.embed(input_ids, media)
        return self.language_model.generate(
            inputs_embeds=embeds, attention_mask=attention_mask.to(self.device),
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=eos_token_id, pad_token_id=pad_token_id)


def count_params(config: dict[str, Any] | None = None) -> int:
    """Parameters of VideoCon-Physics / VideoPhy-2 (mPLUG-Owl-Video), built on the meta device: the published
    ``config.json`` layout, or the published architecture (LLaMA-7B) when ``config`` is None."""
    conf = MplugOwlConfig.from_dict(config) if config else MplugOwlConfig()
    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(conf)
    return sum(p.numel() for p in model.parameters())
