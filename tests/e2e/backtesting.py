"""What the backtest tests (API, CLI, browser) share: the workflow they backtest and a local
HTTP endpoint counting its requests (a backtest must never call it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request

from bend.devstack.llm_server import ServerHandle, serve_in_background

__all__ = ["NEW_PROMPT", "PROMPT", "Hook", "served_hook", "workflow"]

PROMPT = "topic: ${steps.prep.output}"
# The scripted model answers on the text after `topic:`: runs whose suffix is empty get the same
# answer as before, the others a different one.
NEW_PROMPT = "topic: ${steps.prep.output}${input.suffix}"


class Hook:
    """A local HTTP endpoint counting the requests it gets."""

    def __init__(self) -> None:
        self.requests = 0
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> dict[str, Any]:
            self.requests += 1
            body = await request.json()
            return {"received": body.get("headline"), "n": self.requests}


def workflow(llm_url: str, hook_url: str) -> dict[str, Any]:
    """An agent step, pure steps after it, an http call after those, a pure step last."""
    return {"name": "headline_desk", "llm": {"base_url": llm_url}, "steps": [
        {"id": "prep", "type": "transform", "expression": "input.topic"},
        {"id": "research", "type": "agent", "model": "scripted", "prompt": PROMPT},
        {"id": "headline", "type": "transform", "expression": "steps.research.output.answer"},
        {"id": "publish", "type": "http", "method": "POST", "url": hook_url,
         "body": {"headline": "${steps.headline.output}"}, "retry": {"max_attempts": 1}},
        {"id": "report", "type": "transform",
         "expression": "{headline: steps.headline.output, published: steps.publish.output.body}"},
    ], "output": "steps.report.output"}


@contextlib.contextmanager
def served_hook() -> Iterator[tuple[Hook, ServerHandle]]:
    """A counting Hook served on 127.0.0.1 for the block."""
    counting = Hook()
    handle = serve_in_background(counting.app)
    try:
        yield counting, handle
    finally:
        handle.stop()
