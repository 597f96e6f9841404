"""One image-text-to-text VLM per process, shared by the captioner and the vlm-judge scorer.

Videos are fed as N sampled frames (PIL images), which works without torchvision. When
transformers cannot build the model's own processor (Qwen-VL processors need torchvision for
their video half), a small Qwen-style processor over the tokenizer and the PIL image processor
is used instead.
"""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import Any

from .. import registry
from ..errors import BackendError, InputError, first_line
from ..runtime.devices import resolve_device, resolve_dtype
from ..runtime.hub import resolve_model as _resolve

log = logging.getLogger(__name__)

_CACHE: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
LOCK = threading.RLock()  # one generate() at a time on a shared copy (captioner, vlm-judge, vlm LLM)


def resolve_model(model_id: str) -> str:
    """'tiny' -> the tiny Qwen2-VL folder; an existing folder -> its absolute path; else a hub id."""
    return _resolve(model_id, tiny_kind="vlm", what="VLM model", example="Qwen/Qwen2.5-VL-7B-Instruct")


def get_vlm(model_id: str, device: str = "auto", dtype: str = "auto",
            quantization: str = "none", role: str = "captioner") -> tuple[Any, Any]:
    """(model, processor), loaded once per (resolved path, device, dtype, quantization) in this process; a load
    counts for ``role`` (``registry.LOADS``; a scorer with its own VLM, e.g. VideoScore2, says "scorer")."""
    from ..runtime.quant import quantization_config

    path = resolve_model(model_id)
    dev = resolve_device(device, f"{role}.device")
    torch_dtype = resolve_dtype(dtype, dev, f"{role}.dtype")
    qconf = quantization_config(quantization, dev, f"{role}.quantization")
    key = (path, dev, str(torch_dtype), quantization)
    if key not in _CACHE:
        _CACHE[key] = _load(path, dev, torch_dtype, qconf)
        registry.record_load(role)
    return _CACHE[key]


@registry.on_clear_cache
def clear_cache() -> None:
    _CACHE.clear()


def _load(path: str, device: str, torch_dtype, qconf: Any = None) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText

    from ..runtime.devices import dtype_kwargs

    try:
        extra = {"quantization_config": qconf, "device_map": device} if qconf is not None else {}
        model = AutoModelForImageTextToText.from_pretrained(path, **dtype_kwargs(torch_dtype),
                                                            **extra)
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot load VLM '{path}': {first_line(e)}. Check the id/path, or download it first "
                           "(`huggingface-cli download <id>`).") from e
    if qconf is None:  # a quantized model is placed by device_map and cannot be moved
        model.to(device)
    model.eval()
    return model, load_processor(path)


def load_processor(path: str) -> Any:
    """The model's own processor, or the frames processor when that one cannot be built."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path)
    except Exception as e:  # ImportError without torchvision; odd errors from partial installs
        log.info("AutoProcessor unavailable for %s (%s); using FramesProcessor", path, type(e).__name__)
    return FramesProcessor.from_pretrained(path)


class FramesProcessor:
    """Qwen-VL style processor for images only: each ``<|image_pad|>`` in the text becomes as
    many pad tokens as the image has merged patches. Needs no torchvision."""

    def __init__(self, tokenizer: Any, image_processor: Any, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        self.image_token = "<|image_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise BackendError("the VLM's tokenizer has no <|image_pad|> token, so its frames cannot be fed "
                               "without its own processor; install torchvision or use a Qwen-VL model.")
        if self.chat_template is None:
            raise BackendError("the VLM has no chat template (chat_template.jinja / chat_template.json).")

    @classmethod
    def from_pretrained(cls, path: str) -> "FramesProcessor":
        import json

        from huggingface_hub import hf_hub_download
        from transformers import AutoImageProcessor, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
        ip = AutoImageProcessor.from_pretrained(path)
        template = getattr(tok, "chat_template", None)
        for name in ("chat_template.jinja", "chat_template.json"):
            if template:
                break
            try:
                f = Path(path) / name if Path(path).is_dir() else Path(hf_hub_download(path, name))
                text = f.read_text(encoding="utf-8") if f.is_file() else ""
            except Exception:
                text = ""
            template = json.loads(text)["chat_template"] if text and name.endswith(".json") else text
        return cls(tok, ip, template or None)

    def apply_chat_template(self, messages: list[dict], *, add_generation_prompt: bool = True,
                            tokenize: bool = False, **kw: Any) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt, **kw)

    def __call__(self, *, text: list[str], images: list | None = None, return_tensors: str = "pt", **_: Any):
        from transformers import BatchFeature

        data: dict[str, Any] = {}
        text = list(text)
        if images:
            vis = self.image_processor(images=images, return_tensors="pt")
            data.update(vis)
            merge = int(getattr(self.image_processor, "merge_size", 2)) ** 2
            counts = iter(int(g.prod()) // merge for g in vis["image_grid_thw"])
            for i, t in enumerate(text):
                parts = t.split(self.image_token)
                out = parts[0]
                for part in parts[1:]:
                    out += self.image_token * next(counts) + part
                text[i] = out
        enc = self.tokenizer(text, return_tensors="pt", padding=True, add_special_tokens=False)
        data.update(enc)
        data["mm_token_type_ids"] = (enc["input_ids"] == self.image_token_id).long()
        return BatchFeature(data=data)

    def batch_decode(self, ids, **kw: Any) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kw)


def video_frames(video: str | Path, num_frames: int, frame_size: int) -> list:
    """``num_frames`` frames spread evenly over the video, as RGB PIL images whose longest side
    is at most ``frame_size`` pixels."""
    from PIL import Image

    from ..store.video_io import sample_frames

    out = []
    for arr in sample_frames(Path(video), num_frames):
        img = Image.fromarray(arr).convert("RGB")
        if max(img.size) > frame_size:
            scale = frame_size / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.BICUBIC)
        out.append(img)
    return out


def build_inputs(model: Any, processor: Any, images: list, text: str) -> dict[str, Any]:
    """Chat-formatted inputs (images first, then ``text``, then the assistant's turn) on the
    model's device; keys the model's forward does not take are dropped."""
    if not text.strip():
        raise InputError("empty question for the VLM")
    messages = [{"role": "user", "content": [*({"type": "image"} for _ in images),
                                             {"type": "text", "text": text}]}]
    chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    batch = processor(text=[chat], images=images or None, return_tensors="pt")
    return model_inputs(model, batch)


def model_inputs(model: Any, batch: Any) -> dict[str, Any]:
    """A processor's output on the model's device and dtype, without keys its forward does not take."""
    accepted = inspect.signature(model.forward).parameters
    out = {}
    for k, v in batch.items():
        if k not in accepted and k != "attention_mask":
            continue
        if hasattr(v, "to"):
            v = v.to(model.device)
            if v.is_floating_point():
                v = v.to(model.dtype)
        out[k] = v
    return out


def vision_tower(model: Any) -> Any:
    """The model's vision encoder (``model.visual`` or ``model.model.visual``, by transformers version)."""
    tower = getattr(model, "visual", None) or getattr(getattr(model, "model", None), "visual", None)
    if tower is None:
        raise BackendError(f"{type(model).__name__} has no vision tower ('visual'); use a Qwen-VL model")
    return tower


def encode_images(model: Any, inputs: dict[str, Any]) -> Any:
    """The vision tower's output for ``inputs``' images: one row per image pad token, in order."""
    import torch

    tower = vision_tower(model)
    out = tower(inputs["pixel_values"].type(tower.dtype), grid_thw=inputs["image_grid_thw"])
    out = getattr(out, "pooler_output", out)  # transformers 5 returns an output object, 4.x a tensor
    return torch.cat(list(out)) if isinstance(out, (tuple, list)) else out


def with_image_embeds(model: Any, inputs: dict[str, Any], image_embeds: Any) -> dict[str, Any]:
    """``inputs`` with the pixels replaced by token embeddings that already hold ``image_embeds``
    (from ``encode_images``), so several questions about the same frames run the vision tower once."""
    ids = inputs["input_ids"]
    embeds = model.get_input_embeddings()(ids)
    mask = ids == model.config.image_token_id
    if int(mask.sum()) != image_embeds.shape[0]:
        raise BackendError(f"the VLM input has {int(mask.sum())} image tokens but {image_embeds.shape[0]} "
                           "encoded image patches; the frames differ between the questions")
    embeds = embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), image_embeds.to(embeds.dtype))
    return {**{k: v for k, v in inputs.items() if k != "pixel_values"}, "inputs_embeds": embeds}


def tokenizer_of(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)
