"""The client against httpx.MockTransport: retries on 429/503 after Retry-After (bounded), typed
errors with the problem details, paging, SSE following, the requests each method sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bend.client import (
    ApiUnreachable, AsyncClient, Client, Conflict, InvalidRequest, NotFound, RateLimited,
    RetryPolicy, ServerError, Unavailable,
)
from bend.client.protocol import retry_after_s

Handler = Callable[[httpx.Request], httpx.Response]
PROBLEM = {"type": "urn:bend:problem:unknown_run", "title": "Unknown run", "status": 404,
           "detail": "run r1 not found", "error": "unknown_run", "run_id": "r1"}
RUN = {"run_id": "r1", "workflow_id": "w1", "workflow_version": 1, "status": "completed",
       "requested_at": "2026-01-01T00:00:00Z", "output": {"x": 1},
       "steps": [{"step_id": "a", "node_type": "tool", "status": "succeeded", "attempts": 2}],
       "usage": []}


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "error": code, "detail": f"{code}!"},
                          headers={"Content-Type": "application/problem+json", **headers})


def client(handler: Handler, slept: list[float] | None = None,
           retry: RetryPolicy | None = None) -> Client:
    return Client("http://bend.test", "k1", transport=httpx.MockTransport(handler),
                  sleep=(slept if slept is not None else []).append, retry=retry)


def test_a_429_is_sent_again_after_its_retry_after_then_succeeds() -> None:
    answers = [problem(429, "rate_limited", **{"Retry-After": "2"}),
               problem(503, "unavailable", **{"Retry-After": "0.5"}),
               httpx.Response(200, json=RUN)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    slept: list[float] = []
    run = client(handler, slept).get("r1")
    assert (run.status, run.output, run.step("a").attempts) == ("completed", {"x": 1}, 2)
    assert slept == [2.0, 0.5]
    assert len(seen) == 3 and seen[0].headers["Authorization"] == "Bearer k1"


def test_retries_are_bounded_by_count_and_by_total_wait_then_the_typed_error_is_raised() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return problem(429, "rate_limited", **{"Retry-After": "1"})

    slept: list[float] = []
    with pytest.raises(RateLimited) as caught:
        client(handler, slept, RetryPolicy(retries=3, max_wait_s=30)).get("r1")
    assert (len(calls), slept) == (4, [1.0, 1.0, 1.0])
    assert (caught.value.status, caught.value.error, caught.value.retry_after_s) == (
        429, "rate_limited", 1.0)
    calls.clear()
    slept.clear()
    with pytest.raises(Unavailable):
        client(lambda r: (calls.append(1), problem(503, "kafka_down",
                                                   **{"Retry-After": "8"}))[1],
               slept, RetryPolicy(retries=5, max_wait_s=20)).get("r1")
    assert (len(calls), slept) == (3, [8.0, 8.0])  # a third wait would pass 20 s in all
    calls.clear()
    slept.clear()
    with pytest.raises(Unavailable) as unavailable:
        client(lambda r: (calls.append(1), problem(503, "kafka_down",
                                                   **{"Retry-After": "60"}))[1],
               slept).get("r1")
    assert (len(calls), slept, unavailable.value.retry_after_s) == (1, [], 60.0)


def test_without_retry_after_the_wait_backs_off_and_other_errors_are_not_retried() -> None:
    answers = [problem(503, "unavailable"), problem(503, "unavailable"), problem(500, "boom")]
    slept: list[float] = []
    with pytest.raises(ServerError) as caught:
        client(lambda r: answers.pop(0), slept).get("r1")
    assert slept == [0.5, 1.0] and caught.value.error == "boom" and not answers


@pytest.mark.parametrize(("status", "error_type"), [
    (404, NotFound), (409, Conflict), (422, InvalidRequest), (400, InvalidRequest)])
def test_error_answers_become_typed_errors_carrying_the_problem(
        status: int, error_type: type[Exception]) -> None:
    body = {**PROBLEM, "status": status}
    with pytest.raises(error_type) as caught:
        client(lambda r: httpx.Response(status, json=body)).get("r1")
    err: Any = caught.value
    assert (err.status, err.error, err.detail, err.problem["run_id"]) == (
        status, "unknown_run", "run r1 not found", "r1")
    assert "run r1 not found" in str(err)


def test_a_non_json_error_and_an_unreachable_api_are_typed_too() -> None:
    with pytest.raises(ServerError) as caught:
        client(lambda r: httpx.Response(502, text="bad gateway")).get("r1")
    assert caught.value.detail == "HTTP 502: bad gateway"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiUnreachable, match="cannot reach the Bend API at http://bend.test"):
        client(refuse).get("r1")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import datetime, timezone
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    at = httpx.Response(429, headers={"Retry-After": "Thu, 01 Jan 2026 00:00:07 GMT"})
    assert retry_after_s(at, now) == 7.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_s(httpx.Response(429)) is None


def test_start_always_sends_an_idempotency_key_and_flattens_the_position() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.path, dict(request.url.params), json.loads(request.content)))
        return httpx.Response(202, json={"run_id": "r1", "workflow_id": "w1",
                                         "workflow_version": 3, "position": {
                                             "topic": "t", "partition": 0, "offset": 5,
                                             "token": "t:0:5"}})

    bend = client(handler)
    started = bend.start("w1", {"a": 1}, wait_for="c:0:1")
    bend.start("w1", None, idempotency_key="mine", version=2)
    assert started.position == "t:0:5" and started.workflow_version == 3
    (path, params, first), (_, _, second) = bodies
    assert (path, params) == ("/api/workflows/w1/execute", {"wait_for": "c:0:1"})
    assert first["input"] == {"a": 1} and len(first["idempotency_key"]) == 36
    assert second == {"input": None, "idempotency_key": "mine", "version": 2}


def test_list_follows_the_cursor_across_pages_with_the_filters() -> None:
    seen: list[httpx.URL] = []
    summary = {k: RUN[k] for k in ("workflow_id", "workflow_version", "status",
                                   "requested_at")}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.params.get("cursor") is None:
            return httpx.Response(200, json={"items": [{**summary, "run_id": "a"},
                                                       {**summary, "run_id": "b"}],
                                             "next_cursor": "c2"})
        return httpx.Response(200, json={"items": [{**summary, "run_id": "c"}],
                                         "next_cursor": None})

    runs = client(handler).list(workflow_id="w1", status=["failed", "cancelled"], page_size=2)
    assert not seen  # lazy: nothing fetched before iterating
    assert [r.run_id for r in runs] == ["a", "b", "c"]
    assert seen[0].params.get_list("status") == ["failed", "cancelled"]
    assert (seen[0].params["limit"], seen[0].params["workflow_id"]) == ("2", "w1")
    assert seen[1].params["cursor"] == "c2"


def _frame(seq: int, event: str, data: dict[str, Any]) -> str:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data)}\n\n"


def _event(seq: int, event_type: str) -> dict[str, Any]:
    return {"seq": seq, "event_id": f"e{seq}", "event_type": event_type, "step_id": None,
            "occurred_at": "2026-01-01T00:00:00Z", "payload": {}}


def test_follow_reconnects_after_a_server_timeout_where_it_left_off_and_stops_at_end() -> None:
    streams = [
        _frame(1, "RunRequested", _event(1, "RunRequested")) + ": keep-alive\n\n"
        + _frame(1, "timeout", {"status": "running"}),
        _frame(2, "RunCompleted", _event(2, "RunCompleted"))
        + _frame(2, "end", {"status": "completed"}),
    ]
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path.endswith("/events"):
            return httpx.Response(200, text=streams.pop(0),
                                  headers={"Content-Type": "text/event-stream"})
        return httpx.Response(200, json=RUN)

    bend = client(handler)
    assert [e.event_type for e in bend.follow("r1")] == ["RunRequested", "RunCompleted"]
    assert [u.params["after_seq"] for u in seen] == ["0", "1"]
    assert seen[0].params["follow"] == "true"
    streams[:] = [_frame(3, "end", {"status": "completed"})]
    assert bend.wait("r1").status == "completed"


def test_signal_approve_reject_cancel_and_fork_send_what_the_api_reads() -> None:
    sent: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        if request.url.path.endswith("/fork"):
            return httpx.Response(202, json={"run_id": "r2", "forked_from_run_id": "r1",
                                             "fork_step_id": "b", "reused": ["a"]})
        return httpx.Response(202, json={"run_id": "r1", "position": {
            "topic": "t", "partition": 1, "offset": 2, "token": "t:1:2"}})

    bend = client(handler)
    assert bend.signal("r1", "go", {"n": 1}).position == "t:1:2"
    bend.approve("r1", "ok", answer={"x": 1})
    bend.reject("r1", "ok", comment="no")
    bend.cancel("r1", "enough")
    assert bend.fork("r1", "b", set={"q": 2}).reused == ["a"]
    assert sent == [
        ("/api/executions/r1/signals/go", {"n": 1}),
        ("/api/executions/r1/approvals/ok", {"decision": "approve", "comment": "",
                                             "answer": {"x": 1}}),
        ("/api/executions/r1/approvals/ok", {"decision": "reject", "comment": "no",
                                             "answer": None}),
        ("/api/executions/r1/cancel", {"reason": "enough"}),
        ("/api/executions/r1/fork", {"from_step": "b", "input": None, "set": {"q": 2}}),
    ]


async def test_the_async_client_retries_and_maps_errors_the_same_way() -> None:
    answers = [problem(503, "unavailable", **{"Retry-After": "1"}), httpx.Response(404,
                                                                                   json=PROBLEM)]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncClient("http://bend.test", transport=httpx.MockTransport(
            lambda r: answers.pop(0)), sleep=sleep) as bend:
        with pytest.raises(NotFound) as caught:
            await bend.get("r1")
    assert slept == [1.0] and caught.value.problem["run_id"] == "r1"


async def test_the_async_client_pages_and_follows() -> None:
    summary = {k: RUN[k] for k in ("workflow_id", "workflow_version", "status",
                                   "requested_at")}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, text=_frame(1, "RunRequested", _event(1, "RunRequested"))
                                  + _frame(1, "end", {}))
        cursor = request.url.params.get("cursor")
        return httpx.Response(200, json={"items": [{**summary, "run_id": cursor or "a"}],
                                         "next_cursor": None if cursor else "b"})

    async with AsyncClient("http://bend.test", transport=httpx.MockTransport(handler)) as bend:
        assert [r.run_id async for r in bend.list()] == ["a", "b"]
        assert [e.seq async for e in bend.follow("r1")] == [1]


def test_following_a_run_not_projected_yet_takes_its_404_for_a_while(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bend.client import sync
    answers = [httpx.Response(404, json=PROBLEM), httpx.Response(
        200, text=_frame(1, "RunRequested", _event(1, "RunRequested")) + _frame(1, "end", {}))]
    monkeypatch.setattr(sync.time, "sleep", lambda s: None)
    assert [e.seq for e in client(lambda r: answers.pop(0)).follow("r1")] == [1]
    monkeypatch.setattr(sync, "UNSEEN_GRACE_S", -1.0)
    with pytest.raises(NotFound):
        list(client(lambda r: httpx.Response(404, json=PROBLEM)).follow("r1"))


def test_reads_of_a_run_wait_for_the_clients_last_command_on_it() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.method == "POST":
            return httpx.Response(202, json={"run_id": "r1", "workflow_id": "w1",
                                             "workflow_version": 1, "position": {
                                                 "topic": "t", "partition": 0, "offset": 9,
                                                 "token": "t:0:9"}})
        return httpx.Response(200, json=RUN)

    bend = client(handler)
    bend.get("r1")
    bend.start("w1", {})
    bend.get("r1")
    bend.get("r1", wait_for="t:0:1")
    assert [u.params.get("wait_for") for u in seen if u.path.endswith("/r1")] == [
        None, "t:0:9", "t:0:1"]


def test_wait_gives_up_after_its_timeout_with_the_runs_status() -> None:
    from bend.client import WaitTimedOut

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, text=_frame(0, "timeout", {"status": "running"}))
        return httpx.Response(200, json={**RUN, "status": "running"})

    with pytest.raises(WaitTimedOut, match="run r1 still running after 0.2 s"):
        client(handler).wait("r1", timeout_s=0.2)
