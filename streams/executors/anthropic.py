"""Anthropic's Messages API spoken natively: a chat-completions request as a Messages request,
and a Messages response as a chat completion, so the agent loop keeps one shape.

System messages go to `system`; tool calls become `tool_use` blocks, tool results `tool_result`
blocks in a user turn (consecutive turns of one role are merged: the API wants them to
alternate); usage `input_tokens`/`output_tokens` and `stop_reason` map to their OpenAI names.
"""

from __future__ import annotations

import json
from typing import Any

from streams.executors.errors import LlmBadResponse

__all__ = ["STOP_REASONS", "completion_of", "messages_request"]

# Messages API stop_reason -> chat-completions finish_reason.
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
                "max_tokens": "length", "pause_turn": "stop", "refusal": "content_filter"}


def _arguments(raw: Any) -> Any:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        return [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", "")),
                 "content": content if isinstance(content, str) else json.dumps(content)}]
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": str(call.get("id", "")),
                       "name": str(function.get("name", "")),
                       "input": _arguments(function.get("arguments") or "{}")})
    return blocks


def messages_request(request: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """The Messages API request for a chat-completions `request`."""
    system = [str(m.get("content") or "") for m in request.get("messages") or []
              if m.get("role") == "system"]
    turns: list[dict[str, Any]] = []
    for message in request.get("messages") or []:
        if message.get("role") == "system":
            continue
        role = "assistant" if message.get("role") == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    native: dict[str, Any] = {"model": request.get("model"), "max_tokens": max_tokens,
                              "messages": turns}
    if system:
        native["system"] = "\n\n".join(system)
    if request.get("tools"):
        native["tools"] = [{"name": t["function"]["name"],
                            "description": t["function"].get("description") or "",
                            "input_schema": t["function"].get("parameters") or {"type": "object"}}
                           for t in request["tools"]]
    if request.get("temperature") is not None:
        native["temperature"] = request["temperature"]
    return native


def completion_of(body: Any) -> dict[str, Any]:
    """The chat completion a Messages API response amounts to; LlmBadResponse if it is none."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise LlmBadResponse(f"the model endpoint answered no Messages API response "
                             f"({body!r:.200}); check that base_url points at an "
                             "Anthropic-compatible API")
    texts = [str(b.get("text", "")) for b in body["content"]
             if isinstance(b, dict) and b.get("type") == "text"]
    calls = [{"id": str(b.get("id", "")), "type": "function",
              "function": {"name": str(b.get("name", "")),
                           "arguments": json.dumps(b.get("input") or {})}}
             for b in body["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    usage = body.get("usage") or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    stop = str(body.get("stop_reason") or "")
    return {
        "id": body.get("id"), "object": "chat.completion", "model": body.get("model"),
        "choices": [{"index": 0, "message": message,
                     "finish_reason": STOP_REASONS.get(stop, stop or None)}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }
