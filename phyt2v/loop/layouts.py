"""Dynamic scene layouts (LVD, Lian et al., ICLR 2024): reading them, converting them, checking them.

Inside phyt2v a :class:`~phyt2v.schemas.Layout` holds normalised boxes ``[x0, y0, x1, y1]`` (fractions of the
frame from its top-left corner) per keyframe, keyframes ``t`` seconds apart (two per second by default, as LVD).
LLMs plan on LVD's 512x512 canvas:

- ``to_layout`` converts the layout step's JSON reply (:class:`~phyt2v.schemas.LayoutReply`: a reasoning, one
  entry per object with its name and a box per frame as corners ``[x0, y0, x1, y1]`` in pixels, ``[0, 0, 0, 0]``
  where it is out of view, a background). Each name is given once, so ids cannot drift between frames, and
  corners bounded to the canvas keep a schema-constrained LLM's boxes inside the frame. ``read_plan`` also takes
  LVD's text format, whose boxes are ``[x, y, width, height]``;
- ``parse_lvd_text`` reads LVD's own text format (its template ``prompt.py`` and parser ``utils/llm.py``)::

      Reasoning: ...
      Frame 1: [{'id': 0, 'name': 'red ball', 'box': [0, 206, 50, 50]}]
      ...
      Frame 6: [...]
      Background keyword: garden

  as LVD reads it: the text before ``Frame 1:`` is the reasoning, each frame's list is a Python literal (a
  `` - comment`` after it is dropped), the line after ``Background keyword:`` is the background. Spacing and
  case of the markers may vary; boxes are taken as written (no clipping), so LVD's benchmark scores them as its
  own evaluator does;
- ``lvd_text`` writes a layout back in that format (layout caches for LVD's tools);
- ``violations`` checks a planned layout: frame count, boxes inside the frame, ids consistent, names in the
  prompt (``words.find_phrase``: LVD's phrase matching).
"""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from typing import Any

from pydantic import Field, create_model

from ..schemas import CANVAS, MAX_OBJECTS, Keyframe, Layout, LayoutObject, LayoutReply, PlannedObject
from .parsing import ReplyError, parse_reply
from .words import find_phrase, noun_phrases

KEYFRAMES = 6          # LVD: six frames ...
PER_SECOND = 2.0       # ... two per second
EDGE_TOLERANCE = 0.05  # a box may stick out of the frame by this share of it (then it is clipped); more is a fault
_FRAME = r"frame\s*{k}\s*:"
_BACKGROUND = re.compile(r"background\s*keyword\s*:", re.I)


# ---------------------------------------------------------------- conversions

def norm_box(box: list[float], canvas: float = CANVAS) -> list[float]:
    """LVD's ``[x, y, w, h]`` in pixels of a ``canvas`` square -> normalised ``[x0, y0, x1, y1]``."""
    x, y, w, h = (float(v) for v in box)
    return [x / canvas, y / canvas, (x + w) / canvas, (y + h) / canvas]


def canvas_box(box: list[float], canvas: int = CANVAS) -> list[int]:
    """Normalised ``[x0, y0, x1, y1]`` -> LVD's ``[x, y, w, h]`` in whole pixels of the canvas."""
    x0, y0, x1, y1 = box
    return [round(x0 * canvas), round(y0 * canvas), round((x1 - x0) * canvas), round((y1 - y0) * canvas)]


def aspect_of(generator: Any) -> float:
    """A generator config's frame width / height (1 when it leaves them to the model)."""
    w, h = getattr(generator, "width", None), getattr(generator, "height", None)
    return w / h if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0 else 1.0


def keyframe_times(n: int, per_second: float = PER_SECOND) -> list[float]:
    return [round(k / per_second, 6) for k in range(n)]


def _objects(items: Any, where: str) -> list[LayoutObject]:
    if not isinstance(items, (list, tuple)):
        raise ReplyError(f"{where} is not a list of objects")
    out = []
    for j, it in enumerate(items):
        if not isinstance(it, dict):
            raise ReplyError(f"{where}, item {j + 1} is not an object with 'id', 'name' and 'box'")
        name = it.get("name", it.get("keyword"))
        box = it.get("box")
        if not isinstance(it.get("id"), int) or not isinstance(name, str) or not isinstance(box, (list, tuple)) \
                or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            raise ReplyError(f"{where}, item {j + 1} needs an integer 'id', a 'name' and a 'box' of 4 numbers, "
                             f"got {json.dumps(it, default=str)[:120]}")
        out.append(LayoutObject(id=it["id"], name=name.strip(), box=norm_box(list(box))))
    return out


def to_layout(reply: LayoutReply, per_second: float = PER_SECOND) -> Layout:
    """The layout step's reply (a box per frame per object: corners in canvas pixels) as a normalised
    :class:`Layout`: object ``i`` of the reply gets id ``i``; a box with no width or height marks the object absent
    from that frame.
    ``ReplyError`` when the objects have different numbers of boxes."""
    counts = {len(o.boxes) for o in reply.objects}
    if len(counts) > 1:
        raise ReplyError(f"the objects have different numbers of boxes ({', '.join(map(str, sorted(counts)))}); "
                         "give each object one box per frame")
    n = counts.pop() if counts else 0
    frames = [Keyframe(t=t, objects=[LayoutObject(id=i, name=o.name.strip(), box=[v / CANVAS for v in o.boxes[k]])
                                     for i, o in enumerate(reply.objects)
                                     if o.boxes[k][2] > o.boxes[k][0] and o.boxes[k][3] > o.boxes[k][1]])
              for k, t in enumerate(keyframe_times(n, per_second))]
    return Layout(keyframes=frames, background=reply.background.strip(), reasoning=reply.reasoning.strip())


def _literal(text: str, where: str) -> Any:
    text = text.split(" - ")[0].strip().strip("`").strip()  # LVD drops " - comments" and a leading "-"
    if text.startswith("-"):
        text = text[1:].strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        try:
            return json.loads(text)
        except ValueError:
            raise ReplyError(f"{where} is not a list like [{{'id': 0, 'name': 'ball', 'box': [x, y, w, h]}}]: "
                             f"{text[:120]!r}") from None


def parse_lvd_text(text: str, keyframes: int = KEYFRAMES, per_second: float = PER_SECOND) -> Layout:
    """A reply in LVD's text format (see the module doc) as a normalised :class:`Layout`; ``ReplyError`` naming
    the first missing or unreadable line."""
    text = text or ""
    marks = []
    pos = 0
    for k in range(1, keyframes + 1):
        m = re.compile(_FRAME.format(k=k), re.I).search(text, pos)
        if m is None:
            raise ReplyError(f"no 'Frame {k}:' line found (LVD's format has Frame 1: to Frame {keyframes}: and then "
                             "'Background keyword:')")
        marks.append(m)
        pos = m.end()
    bg = _BACKGROUND.search(text, pos)
    if bg is None:
        raise ReplyError("no 'Background keyword:' line after the last frame")
    reasoning = text[:marks[0].start()].strip(" \t\n`")
    reasoning = re.sub(r"^\s*reasoning\s*:\s*", "", reasoning, flags=re.I).strip()
    ends = [m.start() for m in marks[1:]] + [bg.start()]
    times = keyframe_times(keyframes, per_second)
    frames = [Keyframe(t=t, objects=_objects(_literal(text[m.end():end].strip(" \t\n`"), f"Frame {k + 1}"),
                                             f"Frame {k + 1}"))
              for k, (t, m, end) in enumerate(zip(times, marks, ends))]
    background = text[bg.end():].strip(" \t\n`").split("\n")[0].strip()
    return Layout(keyframes=frames, background=background, reasoning=reasoning)


def lvd_text(layout: Layout) -> str:
    """``layout`` in LVD's text format (boxes back on the 512 canvas, rounded to whole pixels)."""
    lines = [f"Reasoning: {' '.join(layout.reasoning.split())}"]
    for k, kf in enumerate(layout.keyframes, 1):
        objs = [{"id": o.id, "name": o.name, "box": canvas_box(o.box)} for o in kf.objects]
        lines.append(f"Frame {k}: {objs!r}")
    lines.append(f"Background keyword: {layout.background}")
    return "\n".join(lines)


def layout_json(layout: Layout) -> dict[str, Any]:
    """The layout as plain data in the documented key order (keyframes, background, reasoning)."""
    return {"keyframes": [{"t": kf.t, "objects": [{"id": o.id, "name": o.name, "box": [round(v, 4) for v in o.box]}
                                                  for o in kf.objects]} for kf in layout.keyframes],
            "background": layout.background, "reasoning": layout.reasoning}


# ---------------------------------------------------------------- checks

def _edge_faults(box: list[float]) -> list[str]:
    x0, y0, x1, y1 = box
    faults = []
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        faults.append("it has no area (width or height 0)")
    for side, over in (("left", -x0), ("top", -y0), ("right", x1 - 1), ("bottom", y1 - 1)):
        if over > EDGE_TOLERANCE:
            faults.append(f"it goes {round(over * CANVAS)} px past the {side} edge")
    return faults


def violations(layout: Layout, prompt: str, keyframes: int | None = KEYFRAMES) -> list[str]:
    """What is wrong with a planned layout, one sentence each (empty when it is fine): the number of frames,
    boxes with no area or more than ``EDGE_TOLERANCE`` outside the frame, an id named differently in two
    frames or used twice in one, names not found in the prompt (LVD's phrase matching)."""
    out: list[str] = []
    if keyframes is not None and len(layout.keyframes) != keyframes:
        out.append(f"it has {len(layout.keyframes)} frames; give exactly {keyframes}")
    if not any(kf.objects for kf in layout.keyframes):
        out.append("no frame has any object; give each object of the caption a box")
    names: dict[int, str] = {}
    missing: set[str] = set()
    for k, kf in enumerate(layout.keyframes, 1):
        seen: set[int] = set()
        for o in kf.objects:
            where = f"frame {k}, id {o.id} '{o.name}'"
            if o.id in seen:
                out.append(f"{where}: id {o.id} is used twice in this frame; give each object its own id")
            seen.add(o.id)
            first = names.setdefault(o.id, o.name)
            if first.strip().lower() != o.name.strip().lower():
                out.append(f"{where}: id {o.id} was '{first}' in an earlier frame; an id keeps its name")
            for fault in _edge_faults(o.box):
                out.append(f"{where}: box {canvas_box(o.box)}: {fault}")
            if o.name not in missing and find_phrase(prompt, o.name) is None:
                missing.add(o.name)
                out.append(f"'{o.name}' is not a phrase of the caption; name each object with words of the caption")
    return out


def clip(layout: Layout) -> Layout:
    """Boxes clipped to the frame (for the small overhangs ``violations`` lets pass)."""
    def c(v: float) -> float:
        return min(1.0, max(0.0, v))

    return layout.model_copy(update={"keyframes": [
        kf.model_copy(update={"objects": [o.model_copy(update={"box": [c(v) for v in o.box]}) for o in kf.objects]})
        for kf in layout.keyframes]})


# ---------------------------------------------------------------- reading the layout step's reply

@lru_cache(maxsize=64)
def reply_model(keyframes: int, names: tuple[str, ...] = ()) -> type[LayoutReply]:
    """:class:`LayoutReply` whose objects have exactly ``keyframes`` boxes (``minItems = maxItems`` in the JSON
    schema) and, when ``names`` are given, names limited to them in the JSON schema (an ``enum``: a
    schema-constrained LLM can only pick phrases of the caption; parsing still accepts any name, and
    ``violations`` judges it)."""
    base = PlannedObject.model_fields
    name_extra = {"json_schema_extra": {"enum": list(names)}} if names else {}
    obj = create_model("PlannedObject", __base__=PlannedObject, __doc__=PlannedObject.__doc__,
                       name=(str, Field(min_length=1, max_length=80, description=base["name"].description,
                                        **name_extra)),
                       boxes=(base["boxes"].annotation, Field(min_length=keyframes, max_length=keyframes,
                                                              description=base["boxes"].description)))
    objects = LayoutReply.model_fields["objects"]
    return create_model("LayoutReply", __base__=LayoutReply, __doc__=LayoutReply.__doc__,
                        objects=(list[obj], Field(min_length=1, max_length=MAX_OBJECTS,
                                                  description=objects.description)))


def reply_tokens(keyframes: int) -> int:
    """Tokens a layout reply may need: a reasoning, then MAX_OBJECTS objects of ``keyframes`` boxes of about 20
    tokens each (whitespace included; small models indent their JSON)."""
    return 160 + 20 * keyframes * MAX_OBJECTS


def name_choices(prompt: str, objects: list[str] | None = None) -> tuple[str, ...]:
    """Names a planned object may take: the Step-1 objects (a leading article dropped) as found in the prompt by
    LVD's phrase matching, then the prompt's noun phrases (``words.noun_phrases``)."""
    found = [find_phrase(prompt, re.sub(r"^(a|an|the)\s+", "", o.strip(), flags=re.I)) for o in objects or []]
    return tuple(dict.fromkeys([*(f for f in found if f), *noun_phrases(prompt)]))


def read_plan(raw: str, keyframes: int = KEYFRAMES, per_second: float = PER_SECOND,
              names: tuple[str, ...] = ()) -> Layout:
    """The layout step's reply as a :class:`Layout`: the JSON object of :func:`reply_model`, or LVD's text
    format; ``ReplyError`` (feedback for the model) when it is neither."""
    try:
        return to_layout(parse_reply(raw, reply_model(keyframes, names)), per_second)
    except ReplyError as json_error:
        if not re.search(_FRAME.format(k=1), raw or "", re.I):
            raise
        try:
            return parse_lvd_text(raw, keyframes, per_second)
        except ReplyError:
            raise json_error from None
