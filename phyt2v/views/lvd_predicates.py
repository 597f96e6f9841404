"""LVD's benchmark predicates (``utils/eval/utils.py`` and ``utils/eval/lvd.py`` of its repository), applied to a
:class:`~phyt2v.schemas.Layout`: an LLM's planned layout (stage 1) or the detections on a video's frames
(stage 2). ``meta`` is a benchmark item's meta (``batch/lvd.py``).

As LVD's evaluator does, a layout becomes *tracks*: one per object id, in order of first appearance, named by
its first name with digits and spaces stripped from both ends, with a box per keyframe (all zeros where the
object is absent). The boxes go through LVD's interpolation to the same number of frames, which keeps them
except for a shift of about 1e-5 of the way toward the previous keyframe where the object was seen; LVD's
figures depend on it only where a centre sits exactly on a boundary (e.g. x = 0.5), so it is kept.

- A track is found for a query name ``q`` when its name contains ``q + " "`` or ends with ``q`` (LVD's
  ``get_box``; case-sensitive); the first such track is used.
- A frame is *valid* for a track when its box's x1 and y1 are non-zero (LVD's ``box_to_valid_frames``).
- numeracy: the most common number of valid tracks per frame (ties: the smaller) equals ``count``; every
  track counts, whatever its name (as LVD).
- attribution: ``"<color> <object>"`` is found for each object and valid in at least half of the frames.
- visibility (K frames, h = K // 2): ``second_half`` means valid in none of frames [0, h - 1) and in some of
  frames [h + 1, K); ``first_half`` the reverse (the two middle frames are ignored).
- dynamic spatial, one object: valid in the first and last frames, its centre x moving in ``direction``
  (strictly). Two objects: both valid in the first and last frames; object 1 starts on the ``from`` side of
  object 2 and ends on the other side.
- sequential: valid in the first, middle (K // 2) and last frames, its centre in the named quadrant in each
  (lower = centre y > 0.5, left = centre x < 0.5, strictly).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..schemas import Layout

Track = tuple[str, list[list[float]]]  # (name, box per frame as [x0, y0, x1, y1], zeros where absent)


def tracks(layout: Layout) -> list[Track]:
    """LVD's condition: one (name, boxes) per object id, interpolated as LVD's evaluator does."""
    n = len(layout.keyframes)
    names: dict[int, str] = {}
    seen: dict[int, dict[int, list[float]]] = {}
    for k, kf in enumerate(layout.keyframes):
        for o in kf.objects:
            if o.id not in names:
                names[o.id], seen[o.id] = o.name, {}
            seen[o.id][k] = [float(v) for v in o.box]
    return [(names[i].strip("1234567890 "), _interpolate(seen[i], n)) for i in names]


def _interpolate(boxes: dict[int, list[float]], n: int) -> list[list[float]]:
    present = np.array(sorted(boxes), dtype=float)
    xs = present / (n - 1) if n > 1 else np.zeros(1)
    query = np.linspace(0, 1 - 1e-5, n)
    mask = np.isin(np.floor((query % 1.0) * n), present)
    out = np.zeros((n, 4))
    for c in range(4):
        ys = np.array([boxes[int(k)][c] for k in present])
        out[:, c] = np.interp(query, xs, ys) * mask
    return out.tolist()


def find(tracks_: list[Track], names: list[str]) -> list[list[float]] | None:
    for name, boxes in tracks_:
        if any(q + " " in name or name.endswith(q) for q in names):
            return boxes
    return None


def valid(boxes: list[list[float]]) -> np.ndarray:
    b = np.array(boxes)
    return (b[:, 2] != 0) & (b[:, 3] != 0)


def _cx(box: list[float]) -> float:
    return (box[0] + box[2]) / 2


def _cy(box: list[float]) -> float:
    return (box[1] + box[3]) / 2


def numeracy(t: list[Track], meta: dict[str, Any]) -> bool:
    if not t:
        return meta["count"] == 0
    counts = np.sum([valid(boxes) for _, boxes in t], axis=0).astype(int)
    return int(np.bincount(counts).argmax()) == meta["count"]


def attribution(t: list[Track], meta: dict[str, Any]) -> bool:
    for obj, color in zip(meta["objects"], meta["colors"]):
        boxes = find(t, [f"{color} {obj}" if color else obj])
        if boxes is None or valid(boxes).mean() < 0.5:
            return False
    return True


def visibility(t: list[Track], meta: dict[str, Any]) -> bool:
    boxes = find(t, meta["objects"][:1])
    if not boxes:
        return False
    v = valid(boxes)
    h = len(v) // 2
    first, second = bool(v[:h - 1].any()), bool(v[h + 1:].any())
    return (not first and second) if meta["appears"] == "second_half" else (first and not second)


def _before(direction: str) -> Callable[[list[float], list[float]], bool]:
    """Whether box a is on the starting side of box b, for a motion in ``direction``."""
    if direction == "left_to_right":
        return lambda a, b: _cx(a) < _cx(b)
    if direction == "right_to_left":
        return lambda a, b: _cx(a) > _cx(b)
    raise InputError(f"unknown direction '{direction}' in an LVD item's meta; use left_to_right or right_to_left")


def dynamic_spatial(t: list[Track], meta: dict[str, Any]) -> bool:
    before = _before(meta["direction"])
    found = [find(t, [obj]) for obj in meta["objects"]]
    if any(not boxes for boxes in found):
        return False
    if any(not (valid(b)[0] and valid(b)[-1]) for b in found):
        return False
    if len(found) == 1:
        return before(found[0][0], found[0][-1])
    a, b = found
    return before(a[0], b[0]) and before(b[-1], a[-1])


QUADRANTS: dict[str, Callable[[list[float]], bool]] = {
    "lower left": lambda b: _cy(b) > 0.5 and _cx(b) < 0.5,
    "lower right": lambda b: _cy(b) > 0.5 and _cx(b) > 0.5,
    "upper left": lambda b: _cy(b) < 0.5 and _cx(b) < 0.5,
    "upper right": lambda b: _cy(b) < 0.5 and _cx(b) > 0.5,
}


def sequential(t: list[Track], meta: dict[str, Any]) -> bool:
    boxes = find(t, meta["objects"][:1])
    if not boxes:
        return False
    v, mid = valid(boxes), len(boxes) // 2
    if not (v[0] and v[mid] and v[-1]):
        return False
    return all(QUADRANTS[where](boxes[k]) for where, k in zip(meta["path"], (0, mid, -1)))


PREDICATES: dict[str, Callable[[list[Track], dict[str, Any]], bool]] = {
    "numeracy": numeracy, "attribution": attribution, "visibility": visibility,
    "dynamic_spatial": dynamic_spatial, "sequential": sequential,
}


def check(layout: Layout, meta: dict[str, Any]) -> bool:
    """Whether ``layout`` satisfies the LVD item's predicate."""
    task = meta.get("task")
    if task not in PREDICATES:
        raise InputError(f"not an LVD benchmark item (meta task {task!r}); LVD's tasks are "
                         f"{', '.join(PREDICATES)}")
    if not layout.keyframes:
        return False
    return bool(PREDICATES[task](tracks(layout), meta))
