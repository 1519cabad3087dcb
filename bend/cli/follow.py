"""Following a run's events from the CLI (`bend runs run --wait`, `bend runs follow`, bulk
starts), over the API's server-sent events."""

from __future__ import annotations

import time
from typing import Any

from bend.cli.client import ApiClient, CliError, ExitCode

__all__ = ["follow_run"]


def follow_run(api: ApiClient, run_id: str, timeout_s: float, *, after: int = 0,
               wait_for: str | None = None, on_event: Any = None) -> str | None:
    """Follow the run's events after seq `after` until it finishes (its status) or `timeout_s`
    passes (None); a dropped stream is resumed after the last event seen."""
    deadline = time.monotonic() + timeout_s
    last_id: str | None = str(after) if after else None
    while (remaining := deadline - time.monotonic()) > 0:
        params = {"follow": "true", "follow_s": round(min(max(remaining, 1.0), 3600.0), 1),
                  "wait_for": wait_for}
        try:
            for ev in api.events(f"/api/executions/{run_id}/events", params, last_id):
                if ev.event == "end":
                    return str(ev.json()["status"])
                if ev.event == "timeout":
                    break
                last_id = ev.id or last_id
                if on_event is not None:
                    on_event(ev.json())
        except CliError as err:
            if err.exit_code != ExitCode.UNAVAILABLE or deadline - time.monotonic() < 1:
                raise
            time.sleep(1.0)  # the stream dropped: resume after the last event
    return None
