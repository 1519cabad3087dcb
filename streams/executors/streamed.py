"""A streamed model answer put back together: the same response a non-streamed call returns.

OpenAI chat-completions chunks (`stream: true`, usage in the last chunk with
`stream_options.include_usage`) assemble into a chat completion; Anthropic Messages API events
(`message_start`, `content_block_*`, `message_delta`) into a Messages response. Each `feed`
returns the text the piece added, for the side channel (streams/executors/tokens.py). Pure: no
I/O; the SSE lines are read by streams/executors/llm.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from streams.executors.errors import LlmBadResponse, LlmUnavailable

__all__ = ["AnthropicAssembly", "OpenAiAssembly", "sse_data", "streaming_request"]


def streaming_request(request: dict[str, Any], provider: str) -> dict[str, Any]:
    """`request` asking the provider to stream (OpenAI: with the usage in the last chunk)."""
    if provider == "anthropic":
        return {**request, "stream": True}
    return {**request, "stream": True, "stream_options": {"include_usage": True}}


def sse_data(line: str) -> str | None:
    """The data of one SSE line (`data: ...`), None for other lines (event names, comments)."""
    if not line.startswith("data:"):
        return None
    return line[5:].removeprefix(" ")


def _object(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise LlmBadResponse(f"the model streamed a chunk that is not JSON: {data[:200]!r}") \
            from exc
    if not isinstance(value, dict):
        raise LlmBadResponse(f"the model streamed a chunk that is no object: {data[:200]!r}")
    return value


@dataclass(slots=True)
class OpenAiAssembly:
    """Chat-completion chunks -> the chat completion a non-streamed call answers."""

    head: dict[str, Any] = field(default_factory=dict)  # id, created, model
    texts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # by the delta's index
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    done: bool = False

    def feed(self, data: str) -> str:
        """Take one SSE data payload; the text it added."""
        if data.strip() == "[DONE]":
            self.done = True
            return ""
        chunk = _object(data)
        if "error" in chunk:
            raise LlmBadResponse(f"the model streamed an error: {chunk['error']!r:.300}")
        for key in ("id", "created", "model"):
            if key in chunk and key not in self.head:
                self.head[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        added = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                added.append(delta["content"])
            for piece in delta.get("tool_calls") or []:
                self._call(piece)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        self.texts.extend(added)
        return "".join(added)

    def _call(self, piece: dict[str, Any]) -> None:
        call = self.calls.setdefault(int(piece.get("index") or 0), {
            "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        if piece.get("id"):
            call["id"] = piece["id"]
        if piece.get("type"):
            call["type"] = piece["type"]
        function = piece.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""

    def result(self) -> dict[str, Any]:
        """The chat completion; LlmUnavailable if the stream ended before its last choice."""
        if self.finish_reason is None:
            raise LlmUnavailable("the model's stream ended before its answer did; it is retried")
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(self.texts) if self.texts else None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        completion: dict[str, Any] = {
            "id": self.head.get("id"), "object": "chat.completion",
            "created": self.head.get("created"), "model": self.head.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }
        if self.usage is not None:
            completion["usage"] = self.usage
        return completion


@dataclass(slots=True)
class AnthropicAssembly:
    """Messages API stream events -> the Messages response a non-streamed call answers."""

    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    partial_json: dict[int, list[str]] = field(default_factory=dict)
    done: bool = False

    def feed(self, data: str) -> str:
        """Take one SSE data payload (its `type` says which event); the text it added."""
        event = _object(data)
        kind = event.get("type")
        if kind == "error":
            raise LlmBadResponse(f"the model streamed an error: {event.get('error')!r:.300}")
        if kind == "message_start":
            self.message = dict(event.get("message") or {})
            self.message["usage"] = dict(self.message.get("usage") or {})
        elif kind == "content_block_start":
            index = int(event.get("index") or 0)
            self.blocks[index] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(int(event.get("index") or 0), event.get("delta") or {})
        elif kind == "message_delta" and self.message is not None:
            self.message.update(event.get("delta") or {})
            self.message["usage"].update(event.get("usage") or {})
        elif kind == "message_stop":
            self.done = True
        return ""

    def _delta(self, index: int, delta: dict[str, Any]) -> str:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        if delta.get("type") == "text_delta":
            text = str(delta.get("text") or "")
            block["text"] = str(block.get("text") or "") + text
            return text
        if delta.get("type") == "input_json_delta":
            self.partial_json.setdefault(index, []).append(str(delta.get("partial_json") or ""))
        return ""

    def result(self) -> dict[str, Any]:
        """The Messages response; LlmUnavailable if the stream ended before the message did."""
        if self.message is None or not self.done:
            raise LlmUnavailable("the model's stream ended before its answer did; it is retried")
        content = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if block.get("type") == "tool_use":
                raw = "".join(self.partial_json.get(index, []))
                try:
                    block["input"] = json.loads(raw) if raw else (block.get("input") or {})
                except ValueError as exc:
                    raise LlmBadResponse(f"the model streamed tool input that is not JSON: "
                                         f"{raw[:200]!r}") from exc
            content.append(block)
        return {**self.message, "content": content}
