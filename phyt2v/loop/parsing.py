"""Turn an LLM reply into a pydantic model: the middle rungs of the parse ladder.

Rung 1 (schema-constrained output) is the backend's job; here: JSON extraction that tolerates
code fences, prose around the object, trailing commas and a reply cut off mid-object, then
light coercion (a lone string where a list is expected and the reverse; values over a field's
``max_length`` trimmed), then validation.
A failure raises ``ReplyError`` with a message meant to be shown back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class ReplyError(ValueError):
    """The reply could not be read as the expected object; ``str()`` is feedback for the model."""


def _close_truncated(text: str) -> str:
    """Close strings, arrays and objects left open by a reply that was cut off."""
    stack: list[str] = []
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = text + ('"' if in_str else "")
    out = out.rstrip()
    out = re.sub(r",\s*$", "", out)
    if out.endswith(":"):
        out += " null"
    return out + "".join(reversed(stack))


def _candidates(text: str) -> list[str]:
    cands: list[str] = []
    stripped = text.strip()
    if stripped:
        cands.append(stripped)
    for m in _FENCE.finditer(text):
        if m.group(1).strip():
            cands.append(m.group(1).strip())
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        if end > start:
            cands.append(text[start:end + 1])
        cands.append(text[start:])  # maybe truncated
    return cands


def extract_json(text: str) -> Any:
    """The first JSON object found in ``text``; raises ReplyError when there is none."""
    if not text or not text.strip():
        raise ReplyError("the reply was empty")
    for cand in _candidates(text):
        for variant in (cand, _TRAILING_COMMA.sub(r"\1", cand)):
            try:
                return json.loads(variant)
            except json.JSONDecodeError:
                pass
        try:
            return json.loads(_TRAILING_COMMA.sub(r"\1", _close_truncated(cand)))
        except json.JSONDecodeError:
            continue
    raise ReplyError("no JSON object was found in the reply")


def _coerce(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for name, field in model.model_fields.items():
        if name not in out:
            continue
        val = out[name]
        is_list = get_origin(field.annotation) is list
        if is_list and isinstance(val, str):
            out[name] = [val] if val.strip() else []
        elif field.annotation is str and isinstance(val, list) and all(isinstance(v, str) for v in val):
            out[name] = " ".join(val)
        elif is_list and isinstance(val, list) and _kind(field.annotation) == "list of strings":
            # a list of small objects ({"rule": "..."}) -> their text
            out[name] = [next(iter(v.values())) if isinstance(v, dict) and len(v) == 1 else v for v in val]
        limit = _max_length(field.metadata)
        if limit is not None and isinstance(out[name], (list, str)):
            out[name] = out[name][:limit]
        if is_list and isinstance(out[name], list):
            item_args = get_args(field.annotation)
            item_limit = _max_length(getattr(item_args[0], "__metadata__", ())) if item_args else None
            if item_limit is not None:
                out[name] = [v[:item_limit] if isinstance(v, str) else v for v in out[name]]
    return out


def _max_length(metadata: Any) -> int | None:
    return next((m.max_length for m in metadata if getattr(m, "max_length", None)), None)


def field_list(model: type[BaseModel]) -> str:
    """The model's fields as lines for a prompt: name (type): description."""
    lines = []
    for name, field in model.model_fields.items():
        lines.append(f'- "{name}" ({_kind(field.annotation)}): {field.description}')
    return "\n".join(lines)


def _kind(annotation: Any) -> str:
    """How a field's type reads in a prompt: string, number, object, list of strings, list of lists of objects."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is list:
        args = get_args(annotation)
        inner = _kind(args[0]) if args else "string"
        return "list of " + (inner.replace("list", "lists", 1) if inner.startswith("list") else inner + "s")
    if annotation in (float, int):
        return "number"
    return "object" if isinstance(annotation, type) and issubclass(annotation, BaseModel) else "string"


def parse_reply(text: str, model: type[M]) -> M:
    data = extract_json(text)
    if not isinstance(data, dict):
        raise ReplyError(f"the reply is JSON but a {type(data).__name__}, not an object with fields "
                         f"{', '.join(model.model_fields)}")
    # some models wrap the answer: {"answer": {...}}
    if not set(model.model_fields) & set(data) and len(data) == 1:
        inner = next(iter(data.values()))
        if isinstance(inner, dict):
            data = inner
    try:
        return model.model_validate(_coerce(model, data))
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            problems.append(f"field '{loc}': {'missing' if err['type'] == 'missing' else err['msg']}")
        raise ReplyError("; ".join(problems)) from None
