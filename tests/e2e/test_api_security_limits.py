"""API limits on the real Kafka and Postgres: bodies over the limit answer 413, too many requests
per key or per client address answer 429 with Retry-After; nothing is produced either way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BODY_LIMIT = 4096
KEY_BURST = 5
IP_BURST = 12
WORKFLOW: dict[str, Any] = {
    "name": "limited",
    "steps": [{"id": "hello", "type": "transform", "expression": "'hello'"}],
}


@pytest.fixture(scope="module")
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    base = get_settings()
    # Slow refills, so a bucket emptied by the test stays empty while it looks.
    security = base.security.model_copy(update={
        "body_limit_bytes": BODY_LIMIT, "key_burst": KEY_BURST, "key_rate_per_s": 0.05,
        "ip_burst": IP_BURST, "ip_rate_per_s": 0.05})
    settings = isolated_settings(base.model_copy(update={"security": security}))
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


def client_from(api: RunningApi, address: str, key: str | None = None) -> httpx.AsyncClient:
    """A client of the same app seen as coming from `address` (a bucket of its own)."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    headers = api.headers(key) if key else {}
    return httpx.AsyncClient(transport=transport, base_url="http://bend.test", headers=headers)


async def test_a_body_over_the_limit_is_refused_with_413_and_nothing_produced(
        api: RunningApi) -> None:
    big = {**WORKFLOW, "description": "x" * BODY_LIMIT}
    before = await api.log_ends()
    r = await api.client.post("/api/workflows", json=big)
    assert (r.status_code, r.json()["error"], r.json()["limit_bytes"]) == (
        413, "body_too_large", BODY_LIMIT)
    assert r.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]

    streamed = await api.client.post("/api/workflows", content=chunks(),
                                     headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    hook = await api.client.post("/webhooks/anything", content=b"x" * (BODY_LIMIT + 1))
    assert hook.status_code == 413
    assert await api.log_ends() == before
    assert (await api.client.post("/api/workflows", json=WORKFLOW)).status_code == 201


async def test_a_key_over_its_rate_is_refused_with_429_and_retry_after(api: RunningApi) -> None:
    key = await api.key("operator")
    wf = (await api.client.post("/api/workflows", json=WORKFLOW)).json()
    execute = f"/api/workflows/{wf['workflow_id']}/execute"
    async with client_from(api, "127.0.0.21", key) as client:
        for _ in range(KEY_BURST):
            r = await client.get(f"/api/workflows/{wf['workflow_id']}",
                                 params={"wait_for": wf["position"]["token"]})
            assert r.status_code == 200, r.text
        before = await api.log_ends()
        r = await client.post(execute, json={"input": {}})
        assert (r.status_code, r.json()["error"]) == (429, "rate_limited"), r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert await api.log_ends() == before
    # Another key from the same address is not held back by this one's bucket.
    async with client_from(api, "127.0.0.21", await api.key("operator")) as client:
        assert (await client.post(execute, json={"input": {}})).status_code == 202


async def test_an_address_over_its_rate_is_refused_even_with_a_good_key(
        api: RunningApi) -> None:
    wrong = "bend_0123456789abcdef_" + "A" * 43
    async with client_from(api, "127.0.0.22", wrong) as guesser:
        answers = [(await guesser.get("/api/workflows")).status_code for _ in range(IP_BURST)]
        assert answers == [401] * IP_BURST  # guesses count against the address
        r = await guesser.get("/api/workflows")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    async with client_from(api, "127.0.0.22", api.admin_key) as client:
        before = await api.log_ends()
        r = await client.post("/api/workflows", json=WORKFLOW)
        assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
        signed_or_not = await client.post("/webhooks/anything", content=b"{}")
        assert signed_or_not.status_code == 429  # the receiver is limited per address too
        assert await api.log_ends() == before
