"""The scripted model's structured answers: a JSON value matching the schema a request asks for
(OpenAI `response_format`, or the instruction other providers get), or a deliberately bad one."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["INSTRUCTION", "answer_for", "schema_asked"]

# The instruction the agent executor sends providers without response_format
# (streams/executors/structured.py says the same; the devstack does not import the workers).
INSTRUCTION = "Answer with only a JSON value matching this JSON Schema, no other text:\n"


def schema_asked(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema the request asks the answer to match, if any."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {}
    for message in request.get("messages") or []:
        content = message.get("content")
        if message.get("role") == "system" and isinstance(content, str) \
                and INSTRUCTION in content:
            after = content[content.index(INSTRUCTION) + len(INSTRUCTION):]
            try:  # the schema, then whatever other system text was joined to it
                found, _end = json.JSONDecoder().raw_decode(after)
            except ValueError:
                return {}
            return found if isinstance(found, dict) else {}
    return None


def _sample(schema: Any, text: str) -> Any:
    if not isinstance(schema, dict):
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {k: _sample(v, text) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_sample(schema.get("items") or {}, text)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text[:int(schema.get("maxLength", len(text)))] if text else "x"


def answer_for(schema: dict[str, Any], text: str, bad: bool = False) -> str:
    """A JSON answer matching `schema` built around `text`; `bad`: one that misses it (its
    required properties left out, or, for a schema that is not an object's, no JSON at all)."""
    good = _sample(schema, text)
    if not bad:
        return json.dumps(good)
    if isinstance(good, dict) and schema.get("required"):
        return json.dumps({k: v for k, v in good.items() if k not in schema["required"]})
    return f"Here is the answer: {text}"
