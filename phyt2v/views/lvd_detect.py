"""LVD's stage-2 benchmark: OWL-ViT finds the prompt's objects on a video's frames, and LVD's predicates judge
the detections as they judge a planned layout (``lvd_predicates``).

As LVD's ``scripts/eval_owl_vit.py`` with the settings of its README: 6 frames at
``round(linspace(0, n - 1, 6))``; one OWL-ViT pass per frame with the item's text queries (``a photo of a
car``); detections kept at score >= 0.1 (score = sigmoid of the best query logit, label = that query); boxes
rounded to whole pixels of the frame; class-aware non-maximum suppression at IoU 0.1 (a box is dropped when its
IoU with a better box of the same label is >= 0.1); then, except for numeracy, only the best box per label.
The detections of a frame become that keyframe's objects (id = label * 100 + rank, name = the query), so the
same predicates apply. The detector is ``google/owlvit-base-patch32`` by default (a hub id, a local folder, or
``tiny``: a random-weight one for smoke runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..batch import folder as batchdir
from ..errors import BackendError
from ..runtime.devices import resolve_device
from ..runtime.hub import check_hub_model
from ..schemas import Keyframe, Layout, LayoutObject
from ..store.video_io import read_frames
from . import lvd_predicates
from .lvd import lvd_lines, summarize

DETECTOR = "google/owlvit-base-patch32"
SCORE_THRESHOLD = 0.1
NMS_THRESHOLD = 0.1
EVAL_FRAMES = 6


def frame_indices(n: int, k: int = EVAL_FRAMES) -> list[int]:
    return np.round(np.linspace(0, n - 1, k)).astype(int).tolist()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` with each row of ``b`` (x0, y0, x1, y1), without LVD's pixel +1."""
    w = np.maximum(0.0, np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]))
    h = np.maximum(0.0, np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]))
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):  # two empty boxes: NaN, which (as in LVD) drops the box
        return inter / (area(a) + area(b) - inter)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                    threshold: float = NMS_THRESHOLD) -> list[int]:
    """Indices kept: per label (in increasing label order), best score first, dropping boxes whose IoU with a
    kept box of that label is >= ``threshold``."""
    kept: list[int] = []
    for label in np.unique(labels):
        order = [int(i) for i in np.where(labels == label)[0][np.argsort(scores[labels == label], kind="stable")]]
        while order:
            best = order.pop()
            kept.append(best)
            if order:
                ratios = iou(boxes[best], boxes[order])
                order = [i for i, r in zip(order, ratios) if r < threshold]
    return kept


def best_per_label(kept: list[int], scores: np.ndarray, labels: np.ndarray) -> list[int]:
    out = {}
    for i in kept:
        if labels[i] not in out or scores[i] > scores[out[labels[i]]]:
            out[labels[i]] = i
    return [out[k] for k in sorted(out)]


class Detector:
    """OWL-ViT loaded once (``model``: a hub id or a local folder saved with ``save_pretrained``)."""

    def __init__(self, model: str = DETECTOR, device: str | None = None):
        source = _source(model)
        try:
            import torch
            from transformers import OwlViTForObjectDetection, OwlViTProcessor
        except ImportError as e:
            raise BackendError(f"LVD's detector needs torch and transformers ({e})") from None
        self.torch = torch
        self.device = resolve_device(device, "--device")
        self.model_id = model
        self.processor = OwlViTProcessor.from_pretrained(source)
        self.model = OwlViTForObjectDetection.from_pretrained(source).eval().to(self.device)

    def detect(self, image: np.ndarray, queries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes normalised x0 y0 x1 y1, scores, labels) of one RGB frame, score >= SCORE_THRESHOLD."""
        from PIL import Image

        inputs = self.processor(text=[queries], images=Image.fromarray(image), return_tensors="pt").to(self.device)
        with self.torch.no_grad():
            out = self.model(**inputs)
        best = out.logits[0].float().max(dim=-1)
        scores = self.torch.sigmoid(best.values).cpu().numpy()
        cx, cy, w, h = out.pred_boxes[0].float().cpu().numpy().T
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        keep = scores >= SCORE_THRESHOLD
        return boxes[keep], scores[keep], best.indices.cpu().numpy()[keep]


def frame_objects(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, queries: list[str],
                  one_box_per_class: bool, size: tuple[int, int]) -> list[LayoutObject]:
    """One frame's detections as layout objects, after NMS (and one box per label), boxes rounded to pixels of a
    frame of ``size`` (height, width) as LVD does."""
    kept = class_aware_nms(boxes, scores, labels)
    if one_box_per_class:
        kept = best_per_label(kept, scores, labels)
    height, width = size
    ranks: dict[int, int] = {}
    objs = []
    for i in kept:
        label = int(labels[i])
        rank = ranks[label] = ranks.get(label, -1) + 1
        x0, y0, x1, y1 = boxes[i]
        px = [round(x0 * width), round(y0 * height), round((x1 - x0) * width), round((y1 - y0) * height)]
        box = [px[0] / width, px[1] / height, (px[0] + px[2]) / width, (px[1] + px[3]) / height]
        objs.append(LayoutObject(id=label * 100 + rank, name=queries[label], box=box))
    return objs


def detected_layout(detector: Detector, video: Path, meta: dict[str, Any]) -> Layout:
    frames, fps = read_frames(video)
    queries = list(meta["queries"])
    keyframes = []
    for k in frame_indices(len(frames)):
        image = frames[k]
        found = detector.detect(image, queries)
        keyframes.append(Keyframe(t=k / fps if fps else 0.0, objects=frame_objects(
            *found, queries, bool(meta.get("one_box_per_class", True)), image.shape[:2])))
    return Layout(keyframes=keyframes)


def score_videos(batch_dir: Path, *, which: str | int = "best", detector: str = DETECTOR, device: str | None = None,
                 on_video: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``phyt2v metrics lvd BATCH``: stage 2 on the chosen round's video of each finished LVD prompt (a prompt
    whose video is missing counts as a failure). ``on_video(done, total)`` reports progress."""
    batch_dir = Path(batch_dir)
    lines = [ln for ln in lvd_lines(batch_dir) if ln.get("status") == "finished"]
    det = Detector(detector, device)
    scored, missing = [], 0
    for n, ln in enumerate(lines):
        if on_video is not None:
            on_video(n, len(lines))
        rnd = batchdir.round_of(ln, which)
        video = batch_dir / rnd["video"] if rnd and rnd.get("video") else None
        if video is None or not video.is_file():
            missing += 1
            scored.append((ln["meta"], False))
            continue
        scored.append((ln["meta"], lvd_predicates.check(detected_layout(det, video, ln["meta"]), ln["meta"])))
    return {"kind": "lvd", "batch": str(batch_dir), "round": which, "detector": detector,
            "settings": {"score_threshold": SCORE_THRESHOLD, "nms_threshold": NMS_THRESHOLD,
                         "frames": EVAL_FRAMES}, **summarize(scored), "without_video": missing}


def _source(model: str) -> str:
    if model == "tiny":
        from ..tiny import tiny_model_dir

        return str(tiny_model_dir("owlvit"))
    p = Path(model).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise BackendError(f"{p} is not an OWL-ViT folder (no config.json); pass the folder that holds it, "
                               f"or the hub id {DETECTOR}")
        return str(p.resolve())
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise BackendError(f"detector not found: {model}; pass an existing folder or a hub id such as {DETECTOR}")
    check_hub_model(model, "LVD's detector")
    return model
