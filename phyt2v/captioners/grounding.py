"""Boxes from a grounding VLM's reply (the captioners' ``locate``): the question, the reply formats, the matching.

Reply formats read (each model's own, from its card and cookbook):

- **Qwen2.5-VL**: a JSON array ``[{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]`` (often in a ```json fence) in
  **absolute pixels of the image as the model saw it** (after its processor's resize: ``image_grid_thw`` x 14);
- **Qwen3-VL**: the same JSON, coordinates **relative, on a 0-1000 grid**;
- **Qwen2-VL**: ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000
  grid (the special tokens are gone once decoded with ``skip_special_tokens``: ``label(x1,y1),(x2,y2)``).

Entries are read one by one (a reply cut short keeps its whole entries); ``bbox``/``box`` are taken for
``bbox_2d``. Boxes come back as fractions ``[x0, y0, x1, y1]`` of the frame, corners ordered, clipped to it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..resources import prompts_dir

PIXELS, THOUSAND = "pixels", "thousand"
# model_type -> how its boxes are written (anything else: the 0-1000 grid most grounding VLMs use)
BOX_FORMATS = {"qwen2_5_vl": PIXELS, "qwen3_vl": THOUSAND, "qwen3_vl_moe": THOUSAND, "qwen2_vl": THOUSAND}
_NUM = r"-?\d+(?:\.\d+)?"
_ENTRY = re.compile(r"\{[^{}]*\}")
_BOX = re.compile(rf'"(?:bbox_2d|bbox|box)"\s*:\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]')
_LABEL = re.compile(r'"label"\s*:\s*"((?:[^"\\]|\\.)*)"')
_TOKENS = re.compile(rf"(?:<\|object_ref_start\|>)?([^()<>\[\]{{}}\n]*?)(?:<\|object_ref_end\|>)?\s*"
                     rf"(?:<\|box_start\|>)?\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")


def box_format(model_type: str | None, model_id: str = "") -> str:
    """``pixels`` or ``thousand`` for a model: by its ``model_type``, else by its name (a served model)."""
    if model_type in BOX_FORMATS:
        return BOX_FORMATS[model_type]
    name = model_id.lower().replace("-", "").replace("_", "").replace(".", "")
    return PIXELS if "qwen25vl" in name else THOUSAND


def instruction(objects: list[str]) -> str:
    """The question asked on each keyframe (``prompts/locate.md``)."""
    text = (prompts_dir() / "locate.md").read_text(encoding="utf-8").strip()
    return text.replace("{{objects}}", "; ".join(objects))


def fit_frame(arr: Any, frame_size: int) -> Any:
    """A frame (H x W x 3 array) as an RGB PIL image whose longest side is at most ``frame_size``."""
    from PIL import Image

    img = Image.fromarray(arr).convert("RGB")
    if max(img.size) > frame_size:
        scale = frame_size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    return img


def qwen_resized(width: int, height: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 12845056) -> tuple[float, float]:
    """(width, height) Qwen2.5-VL's processor resizes an image to (its ``smart_resize`` with the published
    preprocessor's limits): what its pixel boxes refer to when the image is sent to a server."""
    import math

    h, w = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = math.floor(height / beta / factor) * factor, math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return float(w), float(h)


def _fractions(values: list[float], fmt: str, size: tuple[float, float]) -> list[float] | None:
    w, h = (size if fmt == PIXELS else (1000.0, 1000.0))
    x0, y0, x1, y1 = values[0] / w, values[1] / h, values[2] / w, values[3] / h
    box = [min(1.0, max(0.0, v)) for v in (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))]
    return box if box[2] > box[0] and box[3] > box[1] else None


def parse_boxes(text: str, fmt: str, size: tuple[float, float] = (1000.0, 1000.0)) -> list[tuple[str, list[float]]]:
    """(label, box as fractions) for every box in a reply; ``size`` = (width, height) the pixel boxes refer to."""
    text = text or ""
    out: list[tuple[str, list[float]]] = []
    for entry in _ENTRY.findall(text):
        m = _BOX.search(entry)
        if m is None:
            continue
        label = _LABEL.search(entry)
        name = json.loads(f'"{label.group(1)}"') if label else ""
        box = _fractions([float(v) for v in m.groups()], fmt, size)
        if box is not None:
            out.append((name.strip(), box))
    if out or "bbox" in text:
        return out
    for m in _TOKENS.finditer(text):  # Qwen2-VL's box tokens
        box = _fractions([float(v) for v in m.groups()[1:]], fmt, size)
        if box is not None:
            out.append((m.group(1).strip(" ,.:;\n"), box))
    return out


def match(objects: list[str], found: list[tuple[str, list[float]]]) -> list[list[float] | None]:
    """Each object's box, in the order of ``objects`` (a name may repeat: two cars): the first box labelled with its
    name (case ignored), else one whose label has the name's last word, else (one object asked, one unlabelled box)
    that box; None where none fits. A box serves once."""
    left = list(found)
    out: list[list[float] | None] = [None] * len(objects)

    def take(pred: Any) -> list[float] | None:
        for i, (label, box) in enumerate(left):
            if pred(label.lower()):
                del left[i]
                return box
        return None

    for j, name in enumerate(objects):
        out[j] = take(lambda lab, n=name.lower(): lab == n)
    for j, name in enumerate(objects):
        last = name.lower().split()[-1] if name.split() else ""
        if out[j] is None and last:
            out[j] = take(lambda lab, w=last: re.search(rf"\b{re.escape(w)}", lab) is not None)
    if len(objects) == 1 and out[0] is None and len(left) == 1 and not left[0][0]:
        out[0] = left[0][1]
    return out
