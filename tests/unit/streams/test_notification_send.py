"""Sending a webhook delivery: signed like inbound webhooks, retried with back-off, final 4xx."""

from __future__ import annotations

import json
import time

import httpx

from bend.security.webhooks import MemoryReplayGuard, verify
from bend.settings import NotifySettings
from streams.notifications.send import DELIVERY_HEADER, send_webhook

SETTINGS = NotifySettings(webhook_attempts=4, webhook_backoff_s=0.5, webhook_max_backoff_s=1.5)
BODY = {"delivery_id": "d-1", "event": "run_failed", "run_id": "r1"}


def _client(statuses: list[int], seen: list[httpx.Request]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1])
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_a_delivery_is_signed_and_retried_with_doubling_waits_until_it_lands() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async with _client([500, 429, 503, 204], seen) as http:
        out = await send_webhook(http, SETTINGS, "https://hooks.example/x", BODY, "s3cret",
                                 sleep=sleep)
    assert (out.delivered, out.attempts, out.response_status) == (True, 4, 204)
    assert waits == [0.5, 1.0, 1.5]
    last = seen[-1]
    assert json.loads(last.content) == BODY and last.headers[DELIVERY_HEADER] == "d-1"
    assert {r.headers[DELIVERY_HEADER] for r in seen} == {"d-1"}
    assert await verify("s3cret", last.headers, last.content, time.time(), 300,
                        MemoryReplayGuard()) > 0


async def test_a_4xx_is_final_and_exhausted_tries_fail_with_the_last_answer() -> None:
    seen: list[httpx.Request] = []

    async def sleep(s: float) -> None:
        return None

    async with _client([404], seen) as http:
        out = await send_webhook(http, SETTINGS, "https://hooks.example/x", BODY, None,
                                 sleep=sleep)
    assert (out.delivered, out.attempts, out.response_status) == (False, 1, 404)
    assert "X-Bend-Signature" not in seen[0].headers
    seen.clear()
    async with _client([502], seen) as http:
        out = await send_webhook(http, SETTINGS, "https://hooks.example/x", BODY, None,
                                 sleep=sleep)
    assert (out.delivered, out.attempts, out.response_status) == (False, 4, 502)
    assert "answered 502" in (out.error or "")
