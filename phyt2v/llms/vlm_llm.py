"""The captioner's VLM (Qwen2.5-VL / Qwen3-VL instruct) answering the LLM steps as text-only chat.

It takes the VLM from the same per-process cache as the captioner and the vlm-judge scorer
(``vlm_runtime.get_vlm``), with the captioner's device, dtype and quantization, so the three roles hold ONE
loaded copy; calls are serialised by ``vlm_runtime.LOCK``. Output is not schema-constrained
(``supports_schema`` False): the steps' parse ladder extracts the JSON and re-asks on a bad reply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import check_options
from ._common import check_messages

if TYPE_CHECKING:
    from ..config import Config


class VLMChatLLM:
    backend = "vlm"
    supports_schema = False
    quantization_path = "transformers"  # runtime/quant.py

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", quantization: str = "none",
                 temperature: float = 0.2, seed: int | None = 0, max_tokens: int = 1024):
        from ..vlm.runtime import get_vlm

        self.model_id = model
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.last_new_tokens = 0
        self.model, self.processor = get_vlm(model, device, dtype, quantization)

    @classmethod
    def from_config(cls, config: "Config") -> "VLMChatLLM":
        """The captioner's model and placement, so the copy is shared; ``llm.model`` may name another
        VLM (then it is loaded with the llm's own device, dtype and quantization)."""
        c, l = config.captioner, config.llm
        check_options("llm", "vlm", l.options)
        if l.model in (None, c.model):
            from ..runtime.quant import check_shared

            check_shared("llm", l.quantization, c.quantization)
            place = dict(device=c.device, dtype=c.dtype, quantization=c.quantization)
        else:
            place = dict(device=l.device, dtype=l.dtype, quantization=l.quantization)
        return cls(l.model or c.model, **place, temperature=l.temperature, seed=l.seed, max_tokens=l.max_tokens)

    def __repr__(self) -> str:
        return f"VLMChatLLM(model_id={self.model_id!r})"

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> str:
        """A reply to text-only chat; ``schema`` is not enforced (the caller parses)."""
        import inspect

        import torch

        from ..vlm.runtime import LOCK, tokenizer_of

        msgs = check_messages(messages)
        chat = self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        batch = self.processor(text=[chat], return_tensors="pt")
        accepted = inspect.signature(self.model.forward).parameters
        inputs = {k: v.to(self.model.device) for k, v in batch.items()
                  if (k in accepted or k == "attention_mask") and hasattr(v, "to")}
        tok = tokenizer_of(self.processor)
        sample = self.temperature > 0
        gen: dict[str, Any] = dict(max_new_tokens=max_tokens or self.max_tokens, do_sample=sample)
        if sample:
            gen.update(temperature=self.temperature, top_p=1.0, top_k=0)
        if tok.pad_token_id is not None:
            gen["pad_token_id"] = tok.pad_token_id
        with LOCK, torch.inference_mode():
            if sample and self.seed is not None:
                torch.manual_seed(self.seed)
            out = self.model.generate(**inputs, **gen)
        new = out[0, inputs["input_ids"].shape[1]:]
        self.last_new_tokens = int(new.shape[0])
        return tok.decode(new, skip_special_tokens=True).strip()
