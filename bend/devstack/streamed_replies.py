"""The scripted model's answers as streams: a chat completion cut into OpenAI chunks, and a
Messages API response into its stream events, word by word. Written apart from the executor's
assembly (streams/executors/streamed.py) so tests check one against the other."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["STREAM_FLAGS", "messages_events", "openai_chunks", "pieces"]

STREAM_FLAGS = ("stream", "stream_options")  # what a streaming request adds to the request


def pieces(text: str) -> list[str]:
    """`text` cut after each word (with its following spaces); they join back into `text`."""
    return [p for p in re.findall(r"\S*\s*", text) if p]


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [p for p in (text[:middle], text[middle:]) if p]


def openai_chunks(completion: dict[str, Any]) -> list[str]:
    """The SSE data payloads (JSON, then `[DONE]`) streaming `completion` with its usage."""
    head = {"id": completion["id"], "object": "chat.completion.chunk",
            "created": completion["created"], "model": completion["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**head, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}]})

    choice = completion["choices"][0]
    message = choice["message"]
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": p}) for p in pieces(message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"],
                                                       "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in _halves(call["function"]["arguments"])]
    out.append(chunk({}, choice["finish_reason"]))
    out.append(json.dumps({**head, "choices": [], "usage": completion["usage"]}))
    return [*out, "[DONE]"]


def messages_events(response: dict[str, Any]) -> list[tuple[str, str]]:
    """The (event, data) pairs streaming a Messages API `response`."""
    start = {**response, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": response["usage"]["input_tokens"], "output_tokens": 0}}
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start",
                                                                 "message": start})]
    for index, block in enumerate(response["content"]):
        if block["type"] == "text":
            out.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                "content_block": {"type": "text", "text": ""}}))
            out += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": {"type": "text_delta", "text": p}})
                    for p in pieces(block["text"])]
        else:
            out.append(("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"],
                                  "input": {}}}))
            out += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": {"type": "input_json_delta",
                                                       "partial_json": p}})
                    for p in _halves(json.dumps(block["input"]))]
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": response["stop_reason"],
                  "stop_sequence": response["stop_sequence"]},
        "usage": {"output_tokens": response["usage"]["output_tokens"]}}))
    out.append(("message_stop", {"type": "message_stop"}))
    return [(event, json.dumps(data)) for event, data in out]
