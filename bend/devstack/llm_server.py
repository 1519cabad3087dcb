"""A local OpenAI-compatible chat-completions server playing a scripted, deterministic researcher.

With tools offered it calls `web_search` on the user's topic, then `fetch_page` on the first
result, then each MCP tool offered (`server__tool`) once with the topic, then answers with a
summary of what it read; asked for structured output (a `response_format` JSON Schema, or the
executor's instruction), it answers JSON matching the schema. It speaks OpenAI chat completions
and Anthropic's Messages API (`/v1/messages`). `GET /stats` counts requests; `POST /control`
makes the next N requests fail (or all of them slow) for retry, fallback and breaker tests, or
the next N structured answers miss their schema. Asked with `stream: true` it streams the same
answer as server-sent events (bend/devstack/streamed_replies.py), `stream_delay_ms` apart.
Run it in-process with `start_llm_server()` or as `python -m bend.devstack.llm_server --port P`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from bend.devstack.messages_api import chat_request, messages_reply
from bend.devstack.streamed_replies import STREAM_FLAGS, messages_events, openai_chunks
from bend.devstack.structured_answers import answer_for, schema_asked

__all__ = ["LlmServer", "ServerHandle", "ScriptState", "create_app", "scripted_reply",
           "serve_in_background", "start_llm_server"]

MODEL = "bend-scripted-researcher"


def _words(text: Any) -> int:
    return len(re.findall(r"\S+", text)) if isinstance(text, str) else 0


def _topic(messages: list[dict[str, Any]]) -> str:
    """The user's topic: the text after `topic:` in the last user message that has one, else
    all of the first user message (a later one may be a repair turn, not the task)."""
    users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    named = [u for u in users if re.search(r"topic\s*:", u, flags=re.IGNORECASE)]
    text = (named[-1] if named else users[0] if users else "").strip()
    match = re.search(r"topic\s*:\s*(.+)", text, flags=re.IGNORECASE)
    topic = (match.group(1) if match else text).splitlines()[0] if text else ""
    return topic.strip().rstrip(".")[:200] or "the given subject"


def _tool_results(messages: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Tool results so far, by tool name (found through the assistant's tool_call ids)."""
    names = {c.get("id"): c.get("function", {}).get("name")
             for m in messages if m.get("role") == "assistant"
             for c in (m.get("tool_calls") or [])}
    results: dict[str, list[Any]] = {}
    for m in messages:
        if m.get("role") == "tool":
            try:
                value = json.loads(m.get("content") or "null")
            except ValueError:
                value = {"error": m.get("content")}
            results.setdefault(names.get(m.get("tool_call_id"), "?"), []).append(value)
    return results


def _mcp_arguments(tool: dict[str, Any], topic: str) -> dict[str, Any]:
    """The topic for each required string parameter of an MCP tool (named `server__tool`)."""
    schema = tool.get("function", {}).get("parameters") or {}
    properties = schema.get("properties") or {}
    return {name: topic for name in schema.get("required") or []
            if (properties.get(name) or {}).get("type") == "string"}


def _answer(topic: str, results: dict[str, list[Any]], tools_offered: bool) -> str:
    """The research answer, then what each MCP tool (`server__tool`) answered."""
    said = [f"{name} says: {v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
            for name, values in results.items() if "__" in name for v in values]
    return " ".join([_research(topic, results, tools_offered), *said])


def _research(topic: str, results: dict[str, list[Any]], tools_offered: bool) -> str:
    if not tools_offered:
        return f"Research summary on {topic}: no tools were offered, so nothing was read."
    searches = [r for r in results.get("web_search", []) if isinstance(r, dict)]
    found = searches[-1].get("results", []) if searches else []
    pages = [p for p in results.get("fetch_page", []) if isinstance(p, dict) and "text" in p]
    if not found:
        return f"Research summary on {topic}: the search found no sources on this topic."
    parts = [f"Research summary on {topic}."]
    for page in pages:
        sentences = re.split(r"(?<=\.)\s+", page["text"])
        parts.append(f"From \"{page['title']}\" ({page['url']}): {' '.join(sentences[:2])}")
    others = [r["title"] for r in found if r.get("url") not in {p["url"] for p in pages}]
    if others:
        parts.append("Further sources: " + "; ".join(others) + ".")
    return " ".join(parts)


def scripted_reply(request: dict[str, Any], bad_structured: bool = False) -> dict[str, Any]:
    """The scripted model's chat completion for `request` (a pure function of it); asked for
    structured output, `bad_structured` makes the final answer miss the schema."""
    messages = list(request.get("messages") or [])
    offered = {t.get("function", {}).get("name") for t in request.get("tools") or []}
    topic, results = _topic(messages), _tool_results(messages)
    call_no = sum(1 for m in messages if m.get("role") == "assistant") + 1
    searches = results.get("web_search", [])
    last = searches[-1] if searches else None
    hits = (last.get("results") or []) if isinstance(last, dict) else []
    call: tuple[str, dict[str, Any]] | None = None
    if "web_search" in offered and not searches:
        call = ("web_search", {"query": topic})
    elif "fetch_page" in offered and hits and "fetch_page" not in results:
        call = ("fetch_page", {"url": hits[0]["url"]})
    else:  # then each MCP tool once, on the topic
        mcp = [t for t in request.get("tools") or []
               if "__" in str(t.get("function", {}).get("name")) and
               t["function"]["name"] not in results]
        if mcp:
            call = (mcp[0]["function"]["name"], _mcp_arguments(mcp[0], topic))
    if call is not None:
        arguments = json.dumps(call[1])
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{call_no}", "type": "function",
            "function": {"name": call[0], "arguments": arguments},
        }]}
        finish, completion = "tool_calls", _words(arguments) + 1
    else:
        content = _answer(topic, results, bool(offered))
        schema = schema_asked(request)
        if schema is not None:
            content = answer_for(schema, content, bad_structured)
        message = {"role": "assistant", "content": content}
        finish, completion = "stop", _words(content)
    prompt = sum(_words(m.get("content")) for m in messages)
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-{digest}", "object": "chat.completion", "created": 1_700_000_000,
        "model": request.get("model") or MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }


@dataclass
class ScriptState:
    """What the server counted and what it was told to do to the next requests."""

    requests: int = 0  # chat-completions requests received, failed ones included
    completions: int = 0  # answered with a completion
    failed: int = 0  # answered with an injected error
    tool_call_replies: int = 0
    messages_requests: int = 0  # of the requests, those to the Messages API
    structured_answers: int = 0  # final answers given as JSON for a schema
    fail_next: int = 0
    fail_status: int = 500
    delay_ms: int = 0
    bad_answers_next: int = 0  # the next N structured answers miss their schema
    streamed: int = 0  # of the completions, those streamed
    stream_delay_ms: int = 0  # between the chunks of a streamed answer


def create_app(api_key: str | None = None) -> FastAPI:
    """The server's FastAPI app; `api_key` set means requests need `Bearer <api_key>`."""
    app = FastAPI(title="Bend scripted LLM", docs_url=None, redoc_url=None)
    state = app.state.script = ScriptState()

    async def read(request: Request, authorized: bool) -> dict[str, Any] | JSONResponse:
        """The request's body, or the error the server answers instead."""
        state.requests += 1
        if state.delay_ms:
            await asyncio.sleep(state.delay_ms / 1000)
        if state.fail_next > 0:
            state.fail_next -= 1
            state.failed += 1
            return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}},
                                status_code=state.fail_status)
        if not authorized:
            return JSONResponse({"error": {"message": "invalid api key",
                                           "type": "invalid_request_error"}}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return JSONResponse({"error": {"message": "messages is required"}}, status_code=400)
        return body

    def reply_to(body: dict[str, Any]) -> dict[str, Any]:
        structured = schema_asked(body) is not None
        bad = structured and state.bad_answers_next > 0
        reply = scripted_reply(body, bad_structured=bad)
        final = reply["choices"][0]["finish_reason"] == "stop"
        state.completions += 1
        state.tool_call_replies += int(not final)
        if structured and final:
            state.structured_answers += 1
            state.bad_answers_next -= int(bad)
        return reply

    def streamed(frames: list[str]) -> StreamingResponse:
        state.streamed += 1

        async def send() -> Any:
            for frame in frames:
                yield frame
                if state.stream_delay_ms:
                    await asyncio.sleep(state.stream_delay_ms / 1000)

        return StreamingResponse(send(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    def whole(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The request without its streaming flags (the answer is the same), and whether it
        asked to stream."""
        return {k: v for k, v in body.items() if k not in STREAM_FLAGS}, bool(body.get("stream"))

    async def completions(request: Request) -> Response:
        authorized = not api_key or request.headers.get("authorization") == f"Bearer {api_key}"
        body = await read(request, authorized)
        if isinstance(body, JSONResponse):
            return body
        body, stream = whole(body)
        if stream:
            return streamed([f"data: {c}\n\n" for c in openai_chunks(reply_to(body))])
        return JSONResponse(reply_to(body))

    async def messages(request: Request) -> Response:
        """Anthropic's Messages API: `x-api-key` and `anthropic-version` headers."""
        authorized = not api_key or request.headers.get("x-api-key") == api_key
        body = await read(request, authorized)
        if isinstance(body, JSONResponse):
            return body
        state.messages_requests += 1
        if not request.headers.get("anthropic-version") or not body.get("max_tokens"):
            return JSONResponse({"type": "error", "error": {
                "type": "invalid_request_error",
                "message": "anthropic-version header and max_tokens are required"}},
                status_code=400)
        body, stream = whole(body)
        reply = messages_reply(reply_to(chat_request(body)))
        if stream:
            return streamed([f"event: {e}\ndata: {d}\n\n" for e, d in messages_events(reply)])
        return JSONResponse(reply)

    app.add_api_route("/v1/chat/completions", completions, methods=["POST"])
    app.add_api_route("/chat/completions", completions, methods=["POST"])
    app.add_api_route("/v1/messages", messages, methods=["POST"])
    app.add_api_route("/messages", messages, methods=["POST"])

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bend"}]}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return asdict(state)

    @app.post("/control")
    async def control(request: Request) -> dict[str, Any]:
        """Set `fail_next`, `fail_status`, `delay_ms`, `bad_answers_next`, `stream_delay_ms`;
        `reset: true` zeroes everything first."""
        body = await request.json()
        if body.get("reset"):
            for key, value in asdict(ScriptState()).items():
                setattr(state, key, value)
        for key in ("fail_next", "fail_status", "delay_ms", "bad_answers_next",
                    "stream_delay_ms"):
            if key in body:
                setattr(state, key, int(body[key]))
        return asdict(state)

    return app


@dataclass
class ServerHandle:
    """A server running in a background thread; `stop()` ends it."""

    url: str  # http://127.0.0.1:<port>
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)


@dataclass
class LlmServer(ServerHandle):
    """The scripted model server; `base_url` is what OpenAI clients take (ends in /v1)."""

    state: ScriptState | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL."""
        return f"{self.url}/v1"


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # loopback only, by project rule
    return sock


def serve_in_background(app: Any, port: int = 0, start_timeout_s: float = 10.0,
                        lifespan: Literal["on", "off"] = "off") -> ServerHandle:
    """Serve an ASGI app on 127.0.0.1 (`port` 0 picks a free one) from a daemon thread; with
    `lifespan="on"` its startup runs first and open streams are cut 2 s into a stop."""
    sock = _bind(port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan,
                                           loop="asyncio", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"serve-{sock.getsockname()[1]}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on 127.0.0.1:{sock.getsockname()[1]} did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    return ServerHandle(url=f"http://127.0.0.1:{bound}", port=bound, _server=server,
                        _thread=thread)


def start_llm_server(port: int = 0, api_key: str | None = None) -> LlmServer:
    """Start the scripted model server in-process; `.base_url`, `.state`, `.stop()`."""
    app = create_app(api_key)
    handle = serve_in_background(app, port)
    return LlmServer(url=handle.url, port=handle.port,
                     _server=handle._server,  # noqa: SLF001 - the handle is handed over whole
                     _thread=handle._thread,  # noqa: SLF001
                     state=app.state.script)


def main(argv: list[str] | None = None) -> None:
    """`python -m bend.devstack.llm_server --port P [--api-key K]`: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    args = parser.parse_args(argv)
    sock = _bind(args.port)
    print(f"scripted LLM at http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(args.api_key), log_level="warning",
                                           lifespan="off"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
