"""Watching an agent think (issue 22): while an agent step runs, GET /api/executions/{run_id}/tokens
streams its model's text from the agent-tokens side channel, and the run log records the call
exactly as a non-streamed one (the scripted model's whole answer to the same request)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from bend.client.protocol import SseFrame, SseParser
from bend.devstack.engine import Engine
from bend.devstack.llm_server import scripted_reply
from bend.server.testing import RunningApi, api_beside
from tests.e2e.web_pages import get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings) as running:
        yield running


@pytest.fixture
async def served(api: RunningApi) -> AsyncIterator[str]:
    """The API on a real socket (httpx's ASGI transport hands a response over only once it
    has ended), served from this test's event loop, which its connections belong to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api.app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the API did not start"
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


def control(engine: Engine, **body: Any) -> None:
    httpx.post(f"{engine.llm.url}/control", json=body, timeout=5).raise_for_status()


async def frames(base_url: str, key: str, run_id: str, wait_for: str) -> AsyncIterator[SseFrame]:
    parser = SseParser()
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(10.0, read=60.0)) as client, \
            client.stream("GET", f"/api/executions/{run_id}/tokens",
                          params={"step_id": "think", "follow_s": 60,
                                  "wait_for": wait_for}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            for frame in parser.feed([line]):
                yield frame


async def start(api: RunningApi, engine: Engine, topic: str) -> tuple[str, str]:
    """Start a run of one agent step, `think` (no tools: one model call); its id and token."""
    definition = {"name": "agent_tokens", "llm": {"base_url": engine.llm.base_url},
                  "steps": [{"id": "think", "type": "agent", "model": "scripted",
                             "prompt": "Research the topic: ${input.topic}"}]}
    r = await api.client.post("/api/workflows", json=definition)
    assert r.status_code in (200, 201), r.text
    wf = r.json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": {"topic": topic}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    return r.json()["run_id"], r.json()["position"]["token"]


async def step_status(api: RunningApi, run_id: str) -> str | None:
    run = (await api.client.get(f"/api/executions/{run_id}")).json()
    return next((s["status"] for s in run.get("steps") or [] if s["step_id"] == "think"), None)


async def test_an_agents_text_is_watched_as_it_streams_and_recorded_as_a_whole_call(
        api: RunningApi, engine: Engine, served: str) -> None:
    assert engine.llm.state is not None
    control(engine, reset=True, stream_delay_ms=250)  # ~13 words: about 3 s of streaming
    try:
        run_id, token = await start(api, engine, "durable timers")
        texts: list[str] = []
        status_at_first_text = None
        ended: dict[str, Any] = {}
        async for frame in frames(served, api.admin_key, run_id, token):
            if frame.event == "tokens":
                piece = frame.json()
                assert piece["step_id"] == "think"
                if piece["text"] and status_at_first_text is None:
                    status_at_first_text = await step_status(api, run_id)
                texts.append(piece["text"])
            elif frame.event in ("end", "timeout"):
                ended = {"event": frame.event, **frame.json()}
                break
        assert ended.get("event") == "end", ended
        assert ended["status"] in ("succeeded", "completed")
        # text came while the step was still running, not once it had ended
        assert status_at_first_text in (None, "scheduled", "running"), status_at_first_text
        deadline = time.monotonic() + 30
        while (run := (await api.client.get(f"/api/executions/{run_id}")).json()).get(
                "status") != "completed":
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.2)
        answer = run["steps"][0]["output"]["answer"]
        watched = "".join(texts)
        assert watched and answer.endswith(watched)  # all of it, or all since we subscribed
        items = (await api.client.get(f"/api/executions/{run_id}/events")).json()["items"]
        [call] = [e["payload"] for e in items if e["event_type"] == "AgentLlmCallRecorded"]
        assert "stream" not in call["request"] and "stream_options" not in call["request"]
        assert call["response"] == scripted_reply(call["request"])  # as if not streamed
        assert engine.llm.state.streamed >= 1
    finally:
        control(engine, reset=True)


async def test_the_run_page_shows_an_agents_text_as_data_masked_never_as_markup(
        api: RunningApi, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEND_SECRET_TOKENS_DEMO", "sk-hidden-4711")
    control(engine, reset=True, stream_delay_ms=300)
    try:
        run_id, token = await start(api, engine, "<img src=x onerror=alert(1)> sk-hidden-4711")
        client = await signed_in(api, await api.key("viewer"))
        try:
            await api.client.get(f"/api/executions/{run_id}", params={"wait_for": token})
            # httpx's ASGI transport answers once the stream has ended: with the step
            r = await client.get(f"/ui/runs/{run_id}/tokens", params={"step_id": "think"})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/event-stream")
            parser = SseParser()
            got = list(parser.feed([*r.text.splitlines(), ""]))
            assert got[-1].event == "end", got
            text = "".join(f.json()["text"] for f in got if f.event == "tokens")
            assert "<img src=x onerror=alert(1)>" in text  # data (JSON), shown as textContent
            assert "sk-hidden-4711" not in text and "***" in text
            page = await get_page(client, f"/ui/runs/{run_id}")
            [panel] = page.all("section", cls="step-detail")
            assert panel.attrs["data-node-type"] == "agent"
        finally:
            await client.aclose()
        ui_js = (Path(__file__).parents[2] / "bend/web/static/ui.js").read_text()
        shown = ui_js[ui_js.index("function showTokens"):ui_js.index("function watchTokens")]
        assert "box.textContent = " in shown and "innerHTML" not in shown
    finally:
        control(engine, reset=True)
