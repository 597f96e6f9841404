"""A local Hugging Face causal LM (e.g. Qwen/Qwen2.5-7B-Instruct, or a path) through transformers.

bf16 on CUDA, fp32 on CPU; greedy when temperature is 0, else sampling seeded per call.
Output is not schema-constrained (``supports_schema`` False): the caller parses the JSON.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import BackendError, ConfigError
from ..roles import Reply
from ..runtime.devices import dtype_kwargs, resolve_device, resolve_dtype
from ..runtime.hub import check_hub_model
from ._common import check_messages, one_line

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phyt2v")

class TransformersLLM:
    """AutoTokenizer + AutoModelForCausalLM, loaded once. ``options``: ``trust_remote_code``,
    ``revision``, ``attn_implementation``, ``device_map`` (e.g. "auto" to shard over GPUs)."""

    backend = "transformers"
    supports_schema = False
    quantization_path = "transformers"  # runtime/quant.py

    def __init__(self, *, model: str | os.PathLike | None, device: str = "auto", dtype: str = "auto",
                 temperature: float = 0.2, seed: int | None = 0, max_tokens: int = 1024,
                 options: dict[str, Any] | None = None, quantization: str = "none"):
        if not model:
            raise ConfigError("llm.model is required for the transformers backend, e.g. "
                              "llm.model=Qwen/Qwen2.5-7B-Instruct or a local model folder.")
        from ..runtime.quant import quantization_config

        opts = dict(options or {})
        self.model_id = str(model)
        self.device = resolve_device(device, "llm.device")
        self.dtype = resolve_dtype(dtype, self.device, "llm.dtype")
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.last_new_tokens = 0
        self.last_finish_reason: str | None = None
        common = {k: opts[k] for k in ("trust_remote_code", "revision") if k in opts}
        extra = {k: opts[k] for k in ("attn_implementation", "device_map") if k in opts}
        qconf = quantization_config(quantization, self.device, "llm.quantization")
        if qconf is not None:  # placed by device_map; a quantized model cannot be moved afterwards
            extra.update(quantization_config=qconf, device_map=extra.get("device_map", self.device))
        if not Path(self.model_id).expanduser().exists() and not self.model_id.startswith(("/", ".", "~")):
            check_hub_model(self.model_id, "LLM", "llm.model")  # not cached and no hub: fail now, not after retries
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, **common)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.model_id, **dtype_kwargs(self.dtype), **common, **extra)
        except (OSError, ValueError, ImportError) as e:
            raise BackendError(f"cannot load transformers model {self.model_id!r}: {one_line(e, 200)}. "
                               "Give a local model folder, or a Hugging Face id that is cached or "
                               "downloadable.") from None
        if "device_map" not in extra:
            self.model.to(self.device)
        self.model.eval()
        if not getattr(self.tokenizer, "chat_template", None):
            log.warning("LLM %s has no chat template; using a plain 'role: text' prompt", self.model_id)
        registry.record_load("llm")

    @classmethod
    def from_config(cls, config: "Config") -> "TransformersLLM":
        c = config.llm
        return cls(model=c.model, device=c.device, dtype=c.dtype, temperature=c.temperature,
                   seed=c.seed, max_tokens=c.max_tokens, options=c.options, quantization=c.quantization)

    def __repr__(self) -> str:
        return f"TransformersLLM(model_id={self.model_id!r}, device={self.device!r})"

    def _prompt(self, msgs: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in msgs]
        return "\n".join(lines + ["Assistant:"])

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> Reply:
        """Generate a reply; ``schema`` is ignored (not constrained) and left to the caller's parser.
        ``finish_reason`` is "length" when generation used all max_tokens without an end token."""
        import torch
        from transformers import GenerationConfig

        text = self._prompt(check_messages(messages))
        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else (
            eos[0] if isinstance(eos, list) else eos)
        sample = self.temperature > 0
        limit = max_tokens or self.max_tokens
        gen = GenerationConfig(max_new_tokens=limit, do_sample=sample,
                               eos_token_id=eos, pad_token_id=pad,
                               **({"temperature": self.temperature, "top_p": 1.0, "top_k": 0}
                                  if sample else {}))
        if sample and self.seed is not None:
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=gen)
        new = out[0, inputs["input_ids"].shape[1]:]
        self.last_new_tokens = int(new.shape[0])
        stops = set(eos if isinstance(eos, list) else [eos]) - {None}
        ended = any(int(t) in stops for t in new.tolist())  # padding after an end token counts as ended
        self.last_finish_reason = "length" if self.last_new_tokens >= limit and not ended else "stop"
        return Reply(tok.decode(new, skip_special_tokens=True).strip(), self.last_finish_reason)
