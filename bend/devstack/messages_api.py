"""The scripted model behind Anthropic's Messages API: a Messages request read as a chat request,
and the scripted chat completion written as a Messages response (tool_use blocks, usage
input/output tokens, stop_reason). Written apart from the executor's translation
(streams/executors/anthropic.py) so tests check one against the other."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["chat_request", "messages_reply"]

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def _turns(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": message.get("role"), "content": content}]
    texts, calls, results = [], [], []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": json.dumps(block.get("input") or {})}})
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                            "content": inner if isinstance(inner, str) else json.dumps(inner)})
    turns: list[dict[str, Any]] = [*results]
    if message.get("role") == "assistant":
        turn: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            turn["tool_calls"] = calls
        turns.append(turn)
    elif texts:
        turns.append({"role": "user", "content": "".join(texts)})
    return turns


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request a Messages API request amounts to."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": str(body["system"])})
    for message in body.get("messages") or []:
        messages.extend(_turns(message))
    tools = [{"type": "function", "function": {"name": t.get("name"),
                                               "parameters": t.get("input_schema")}}
             for t in body.get("tools") or []]
    return {"model": body.get("model"), "messages": messages,
            **({"tools": tools} if tools else {})}


def messages_reply(completion: dict[str, Any]) -> dict[str, Any]:
    """The Messages API response for a scripted chat completion."""
    choice = completion["choices"][0]
    message = choice["message"]
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        content.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                        "input": json.loads(call["function"]["arguments"])})
    usage = completion.get("usage") or {}
    return {"id": "msg_" + str(completion.get("id", "")).removeprefix("chatcmpl-"),
            "type": "message", "role": "assistant", "model": completion.get("model"),
            "content": content, "stop_reason": _STOP.get(choice.get("finish_reason"), "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0),
                      "output_tokens": usage.get("completion_tokens", 0)}}
