"""`bend runs bulk --concurrency N`: at most N runs of the batch in flight, each followed to its
end.

The bound is kept by the client, which owns the batch: N threads each start one run
(`POST /execute`), follow its events (server-sent, `GET /api/executions/{run_id}/events`)
until the projection shows it finished, and only then start the next. A run counts as in
flight from its StartRun until its terminal event is projected, which is after the engine
wrote it, so the engine never holds more than N of the batch's runs at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from bend.cli.client import ApiClient, ApiFailure, CliError
from bend.cli.follow import follow_run

__all__ = ["ItemResult", "item_key", "run_bounded"]

_CHUNK = 1000  # as bend.cli.bulk.CHUNK: the same key gives the same run in either mode


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What became of one input: its run and final status, or why it did not start."""

    line: int
    run_id: str | None
    status: str  # completed, failed, cancelled, refused (not started), timed_out, unknown
    reason: str | None = None
    seconds: float = 0.0  # from the start request to the run's end as the API showed it

    @property
    def ok(self) -> bool:
        """Whether the run completed."""
        return self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return asdict(self)


def item_key(idempotency_key: str | None, index: int) -> str | None:
    """Input `index`'s idempotency key: `KEY:<chunk>:<i>`, as the chunked bulk start gives it."""
    if idempotency_key is None:
        return None
    return f"{idempotency_key}:{index // _CHUNK}:{index % _CHUNK}"


def _one(api: ApiClient, workflow_id: str, line: int, value: Any, key: str | None,
         version: int | None, timeout_s: float) -> ItemResult:
    began = time.monotonic()
    body: dict[str, Any] = {"input": value}
    if key is not None:
        body["idempotency_key"] = key
    if version is not None:
        body["version"] = version
    try:
        accepted = api.post(f"/api/workflows/{workflow_id}/execute", body)
    except ApiFailure as err:
        return ItemResult(line, None, "refused", err.message)
    run_id = accepted["run_id"]
    position = (accepted.get("position") or {}).get("token")
    try:
        status = follow_run(api, run_id, timeout_s, wait_for=position)
    except CliError as err:
        return ItemResult(line, run_id, "unknown", err.message, time.monotonic() - began)
    if status is None:
        return ItemResult(line, run_id, "timed_out", f"still going after {timeout_s:g} s",
                          time.monotonic() - began)
    reason = None
    if status == "failed":
        reason = _failure(api, run_id)
    return ItemResult(line, run_id, status, reason, time.monotonic() - began)


def _failure(api: ApiClient, run_id: str) -> str | None:
    """The run's error, as its detail shows it (None if it cannot be read)."""
    try:
        run = api.get(f"/api/executions/{run_id}")
    except CliError:
        return None
    kind, message = run.get("error_type"), run.get("error_message")
    return ": ".join(str(x) for x in (kind, message) if x) or None


def run_bounded(api: ApiClient, workflow_id: str, items: Sequence[tuple[int, Any]], *,
                concurrency: int, idempotency_key: str | None = None,
                version: int | None = None, timeout_s: float = 3600.0,
                on_result: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
    """Start one run per (line, input), at most `concurrency` unfinished at once; the results
    in the items' order. `timeout_s` bounds the wait for each run from its start."""
    lock = threading.Lock()

    def task(index: int, line: int, value: Any) -> ItemResult:
        result = _one(api, workflow_id, line, value, item_key(idempotency_key, index), version,
                      timeout_s)
        if on_result is not None:
            with lock:
                on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk") as pool:
        futures = [pool.submit(task, i, line, value) for i, (line, value) in enumerate(items)]
        try:
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C: start nothing more; runs in flight go on
            for f in futures:
                f.cancel()
            raise
