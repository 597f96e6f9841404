"""The layout panel of a round card in the HTML report (``loop.layout``): each keyframe image the layout check saved
(``round-<k>/layout/keyframe-<i>.jpg``, linked like the videos: relative to the page) with the planned boxes
(dashed) and the boxes the captioner measured (solid) drawn over it as inline SVG, one colour per object, and the
IoU of each. A keyframe image that is missing leaves a grey frame under the boxes."""

from __future__ import annotations

from typing import Any

from ..store.record import LayoutCheck

COLORS = ("#e11d48", "#2563eb", "#16a34a", "#d97706", "#7c3aed", "#0891b2")
WIDTH = 160  # px of one keyframe panel


def _rect(box: list[float], w: float, h: float) -> dict[str, str]:
    return {"x": f"{box[0] * w:.1f}", "y": f"{box[1] * h:.1f}", "w": f"{(box[2] - box[0]) * w:.1f}",
            "h": f"{(box[3] - box[1]) * h:.1f}"}


def layout_view(lc: LayoutCheck | None, video_info: dict[str, Any] | None,
                srcs: list[str | None]) -> dict[str, Any] | None:
    """The values the template draws (None when the round has no layout check); ``srcs``: each keyframe image's
    URL relative to the page (None: missing)."""
    if lc is None:
        return None
    info = video_info or {}
    vw, vh = info.get("width") or 16, info.get("height") or 9
    n, fps = info.get("num_frames"), info.get("fps")
    seconds = (n - 1) / fps if isinstance(n, int) and n > 1 and isinstance(fps, (int, float)) and fps > 0 else 0.0
    w, h = WIDTH, round(WIDTH * vh / vw)
    pos = lc.plan.positions()
    panels = []
    for k, kf in enumerate(lc.plan.keyframes):
        checks = {b.id: b for b in (lc.keyframes[k] if k < len(lc.keyframes) else [])}
        boxes = []
        for o in kf.objects:
            b = checks.get(o.id)
            boxes.append({"color": COLORS[o.id % len(COLORS)], "name": o.name, "planned": _rect(o.box, w, h),
                          "measured": _rect(b.measured, w, h) if b is not None and b.measured else None,
                          "iou": f"{b.iou:.2f}" if b is not None else "–"})
        panels.append({"src": srcs[k] if k < len(srcs) else None,
                       "t": f"{pos[k] * seconds:.1f} s", "boxes": boxes})
    return {"w": w, "h": h, "panels": panels, "guided": lc.guided,
            "mean": f"{lc.mean_iou:.3f}" if lc.mean_iou is not None else "not checked",
            "revised": lc.revised is not None}
