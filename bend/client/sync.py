"""`Client`: a synchronous client of one Bend API.

    with Client("http://127.0.0.1:8000", api_key=key) as bend:
        started = bend.start(workflow_id, {"topic": "kafka"})
        run = bend.wait(started.run_id, timeout_s=120)
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx

from bend.client import calls
from bend.client.errors import ApiUnreachable, NotFound, WaitTimedOut
from bend.client.models import Event, Forked, Run, RunSummary, Sent, Started, Workflow
from bend.client.protocol import (
    DEFAULT_BASE_URL, Call, RetryPolicy, SseFrame, SseParser, Writes, failure, headers_for,
)

__all__ = ["Client"]

T = TypeVar("T")

# How long `follow` and `wait` take a 404 for a run not projected yet (one a fork started).
UNSEEN_GRACE_S = 10.0


class Client:
    """A synchronous client of one Bend API; the key is sent as a bearer token. 429 and 503
    answers are sent again after their Retry-After, as `retry` bounds."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None, *,
                 timeout_s: float = 30.0, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 product: str = "bend-client") -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(base_url=self.base_url, headers=headers_for(api_key, product),
                                  timeout=timeout_s, transport=transport)
        self._sleep = sleep
        self._writes = Writes()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, call: Call) -> httpx.Response:
        """Send `call`, again after a 429 or 503 as the retry policy allows; the answer, or
        its typed error (ApiError), or ApiUnreachable."""
        waited = 0.0
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **call.request_kwargs())
            except httpx.TransportError as err:
                raise ApiUnreachable(self.base_url, err) from err
            wait = self.retry.wait_s(response, attempt, waited)
            if wait is None:
                break
            self._sleep(wait)
            waited += wait
            attempt += 1
        if response.status_code >= 400:
            raise failure(response)
        return response

    def _do(self, op: calls.Op[T]) -> T:
        answer = op.parse(self.send(op.call).json())
        self._writes.remember(answer)
        return answer

    def create_workflow(self, definition: dict[str, Any] | str) -> Workflow:
        """Register a new workflow from a definition (a dict, or YAML/JSON text)."""
        return self._do(calls.create_workflow(definition))

    def update_workflow(self, workflow_id: str, definition: dict[str, Any] | str) -> Workflow:
        """Give a workflow a new version (none if the definition equals the latest)."""
        return self._do(calls.update_workflow(workflow_id, definition))

    def start(self, workflow_id: str, input: Any = None, *, idempotency_key: str | None = None,
              version: int | None = None, wait_for: str | None = None) -> Started:
        """Start a run; the same `idempotency_key` always names the same run (a fresh key is
        sent when none is given, so retries never start two runs)."""
        return self._do(calls.start(workflow_id, input, idempotency_key, version, wait_for))

    def get(self, run_id: str, *, wait_for: str | None = None) -> Run:
        """The run with its steps; `wait_for` (a position; by default this client's last
        command for the run) first waits for the read model to show it."""
        return self._do(calls.get(run_id, self._writes.of(run_id, wait_for)))

    def list(self, *, workflow_id: str | None = None, status: str | Iterable[str] | None = None,
             since: datetime | None = None, until: datetime | None = None,
             page_size: int = 50) -> Iterator[RunSummary]:
        """Runs of the key's project, newest first, fetched a page at a time as iterated."""
        cursor: str | None = None
        while True:
            items, cursor = self._do(calls.list_page(workflow_id, status, since, until,
                                                     page_size, cursor))
            yield from items
            if not cursor:
                return

    def events(self, run_id: str, *, after_seq: int = 0) -> builtins.list[Event]:
        """The run's events so far, after `after_seq`, in seq order."""
        found: builtins.list[Event] = []
        while True:
            page, after_seq = self._do(calls.events_page(
                run_id, after_seq, self._writes.of(run_id)))
            found.extend(page)
            if not page:
                return found

    def follow(self, run_id: str, *, after_seq: int = 0,
               timeout_s: float | None = None) -> Iterator[Event]:
        """The run's events as they happen (server-sent events) until it finishes; reconnects
        where it left off. WaitTimedOut if `timeout_s` passes first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        grace = time.monotonic() + UNSEEN_GRACE_S
        while True:
            left = 300.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise WaitTimedOut(run_id, None, timeout_s or 0.0)
            ended = False
            call = calls.follow_call(run_id, after_seq, min(300.0, left),
                                     self._writes.of(run_id))
            try:
                for frame in self.frames(call, float(call.params["follow_s"]) + 30.0):
                    if frame.id is not None:
                        after_seq = int(frame.id)
                    if frame.event == "end":
                        ended = True
                    elif frame.event != "timeout":
                        yield Event.model_validate_json(frame.data)
            except NotFound:
                if after_seq or self._writes.of(run_id) or time.monotonic() > grace:
                    raise
                time.sleep(0.2)  # a run a fork just started shows once projected
                continue
            if ended:
                return

    def frames(self, call: Call, read_timeout_s: float = 60.0) -> Iterator[SseFrame]:
        """The server-sent events `call` answers, until the server ends the stream; its typed
        error (ApiError) if it answers with one, or ApiUnreachable."""
        parser = SseParser()
        timeout = httpx.Timeout(10.0, read=read_timeout_s)
        try:
            with self._http.stream(call.method, call.path, timeout=timeout,
                                   **call.request_kwargs()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise failure(response)
                yield from parser.feed(response.iter_lines())
        except httpx.TransportError as err:
            raise ApiUnreachable(self.base_url, err) from err

    def wait(self, run_id: str, *, timeout_s: float = 300.0) -> Run:
        """Follow the run until it is completed, failed or cancelled; the finished run."""
        try:
            for _ in self.follow(run_id, timeout_s=timeout_s):
                pass
        except WaitTimedOut:
            raise WaitTimedOut(run_id, self.get(run_id).status, timeout_s) from None
        return self.get(run_id)

    def run(self, workflow_id: str, input: Any = None, *, idempotency_key: str | None = None,
            version: int | None = None, timeout_s: float = 300.0) -> Run:
        """Start a run and wait for it to finish."""
        started = self.start(workflow_id, input, idempotency_key=idempotency_key,
                             version=version)
        return self.wait(started.run_id, timeout_s=timeout_s)

    def cancel(self, run_id: str, reason: str = "") -> Sent:
        """Ask the engine to cancel the run and its open steps."""
        return self._do(calls.cancel(run_id, reason))

    def fork(self, run_id: str, from_step: str, *, input: Any = None,
             set: dict[str, Any] | None = None) -> Forked:
        """Start a run reusing `run_id`'s outputs before `from_step`, with input changed."""
        return self._do(calls.fork(run_id, from_step, input, set))

    def replay(self, run_id: str) -> dict[str, Any]:
        """The run's events folded by the engine's `apply`, and where the projection differs."""
        return self._do(calls.replay(run_id))

    def signal(self, run_id: str, name: str, payload: Any = None) -> Sent:
        """Send the run the signal `name` with a JSON payload."""
        return self._do(calls.signal(run_id, name, payload))

    def approve(self, run_id: str, step_id: str, *, answer: Any = None,
                comment: str = "") -> Sent:
        """Approve the run's waiting approval step (with the answer its schema asks for)."""
        return self._do(calls.approval(run_id, step_id, True, comment, answer))

    def reject(self, run_id: str, step_id: str, *, comment: str = "") -> Sent:
        """Reject the run's waiting approval step."""
        return self._do(calls.approval(run_id, step_id, False, comment, None))
