"""Small helpers shared by the LLM backends (no heavy imports)."""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import InputError
from ..runtime.deadline import Abandoned, call_with_deadline, one_line

__all__ = ["Abandoned", "call_with_deadline", "one_line", "check_messages", "json_schema_format", "strict_schema"]

ROLES = ("system", "user", "assistant")


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Validate chat messages and return them as plain ``{"role", "content"}`` dicts."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InputError("messages must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InputError(f"messages[{i}] must be {{'role': one of {', '.join(ROLES)}, "
                             f"'content': str}}, got {str(m)[:80]!r}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def schema_name(schema: dict[str, Any]) -> str:
    """A response_format name (``^[a-zA-Z0-9_-]{1,64}$``) from the schema's title."""
    name = re.sub(r"[^a-zA-Z0-9_-]+", "_", str(schema.get("title") or "reply")).strip("_")
    return (name or "reply")[:64]


def _objects(node: Any):
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A copy usable with OpenAI ``strict: true`` (``additionalProperties: false`` on every
    object), or None when some object has optional properties (strict mode forbids them)."""
    out = copy.deepcopy(schema)
    for obj in _objects(out):
        props = obj.get("properties", {})
        if set(obj.get("required", [])) != set(props) or obj.get("additionalProperties") not in (None, False):
            return None
        obj["additionalProperties"] = False
    return out


def json_schema_format(schema: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """The OpenAI ``response_format`` value for a JSON schema."""
    body: dict[str, Any] = {"name": schema_name(schema), "schema": schema}
    if strict:
        fixed = strict_schema(schema)
        if fixed is not None:
            body = {"name": body["name"], "schema": fixed, "strict": True}
    return {"type": "json_schema", "json_schema": body}
