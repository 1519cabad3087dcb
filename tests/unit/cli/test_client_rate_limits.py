"""The CLI's API client sends a rate-limited (429) request again after its Retry-After."""

from __future__ import annotations

import httpx
import pytest

from bend.cli.client import RATE_LIMIT_RETRIES, ApiClient, ApiFailure, ExitCode


def _client(answers: list[httpx.Response]) -> tuple[ApiClient, list[float], list[str]]:
    slept: list[float] = []
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return answers.pop(0)

    client = ApiClient("http://bend.test", "key", transport=httpx.MockTransport(handler),
                       sleep=slept.append)
    return client, slept, seen


def _limited(after: str = "0.5") -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": after},
                          json={"detail": "too many requests for this API key"})


def test_a_429_is_sent_again_after_retry_after_and_then_succeeds() -> None:
    client, slept, seen = _client([_limited("0.5"), _limited("0"), httpx.Response(200, json=[])])
    assert client.get("/api/workflows") == []
    assert slept == [0.5, 0.1] and seen == ["GET"] * 3


def test_a_limit_that_does_not_lift_is_reported_as_refused() -> None:
    client, slept, _ = _client([_limited("1") for _ in range(RATE_LIMIT_RETRIES + 1)])
    with pytest.raises(ApiFailure) as failure:
        client.post("/api/workflows", {"name": "x"})
    assert failure.value.status == 429 and failure.value.exit_code == ExitCode.REFUSED
    assert slept == [1.0] * RATE_LIMIT_RETRIES


def test_a_wait_longer_than_the_budget_is_not_slept() -> None:
    client, slept, _ = _client([_limited("120")])
    with pytest.raises(ApiFailure):
        client.get("/api/workflows")
    assert slept == []


def test_other_errors_are_not_retried() -> None:
    client, slept, seen = _client([httpx.Response(409, json={"detail": "conflict"})])
    with pytest.raises(ApiFailure) as failure:
        client.post("/api/workflows", {})
    assert failure.value.exit_code == ExitCode.REFUSED and slept == [] and seen == ["POST"]
