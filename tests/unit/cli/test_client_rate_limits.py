"""The CLI's API client (bend.client's, under the CLI's errors) sends a rate-limited (429) or
unavailable (503) request again after its Retry-After."""

from __future__ import annotations

import httpx
import pytest

from bend.cli.client import RETRIES, ApiClient, ApiFailure, ExitCode

RATE_LIMIT_RETRIES = RETRIES.retries


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
    assert slept == [0.5, 0.0] and seen == ["GET"] * 3


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


def test_a_503_with_retry_after_is_sent_again_and_its_answer_kept_as_json() -> None:
    unavailable = httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "busy"})
    client, slept, seen = _client([unavailable, httpx.Response(200, json={"ok": True})])
    assert client.get("/api/workflows") == {"ok": True}
    assert slept == [2.0] and seen == ["GET", "GET"]


def test_the_cli_names_itself_and_sends_its_key() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    with ApiClient("http://bend.test", "k1", transport=httpx.MockTransport(handler)) as api:
        api.get("/api/workflows", status=None, name="x")
    (request,) = sent
    assert request.headers["User-Agent"].startswith("bend-cli/")
    assert request.headers["Authorization"] == "Bearer k1"
    assert dict(request.url.params) == {"name": "x"}  # None values left out
