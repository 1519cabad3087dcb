"""Why a run is not moving: what an unfinished run waits on, told from its read models.

`reasons(...)` is pure: the run, its steps, its pending timers and its open child runs in,
reasons out. `waiting_on(...)` reads those rows; when the explain service (`bend.explain`) is
installed it asks that instead, since it also knows circuits and workers.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

__all__ = ["Reason", "reasons", "waiting_on"]

FINISHED = frozenset({"completed", "failed", "cancelled"})
STUCK_AFTER = timedelta(seconds=30)  # a step queued this long suggests no worker takes it


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing the run waits on; `until` when it is a time, `link` when it is another run."""

    kind: str  # timer | retry | child_run | queued_step | running_step | orchestrator | cancel
    text: str
    step_id: str | None = None
    until: datetime | None = None
    link: str | None = None


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def reasons(run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
            timers: Sequence[Mapping[str, Any]], children: Sequence[Mapping[str, Any]],
            now: datetime) -> list[Reason]:
    """What `run` waits on at `now` (nothing when it has finished)."""
    if run["status"] in FINISHED:
        return []
    found: list[Reason] = []
    if run.get("cancel_requested_at") is not None:
        found.append(Reason("cancel", "a cancel was asked for at "
                            f"{run['cancel_requested_at']:%H:%M:%S}; the orchestrator has not "
                            "applied it yet (is an orchestrator worker running?)"))
    if run["status"] == "queued":
        found.append(Reason("orchestrator", "the run is queued: no orchestrator has started it "
                            f"yet ({_ago(now, run['requested_at'])} since it was asked for); "
                            "check that an orchestrator worker is running"))
    retry_timer = {t["step_id"] for t in timers if t.get("purpose") == "retry"}
    for t in timers:
        if t.get("purpose") == "retry":
            continue
        due = t["fire_at"]
        late = f", {_ago(now, due)} overdue (is the orchestrator running?)" if due < now else ""
        what = f"step {t['step_id']}'s" if t.get("step_id") else "the run's"
        found.append(Reason("timer", f"{what} {t['purpose']} timer, due at {due:%H:%M:%S} UTC"
                            f"{late}", t.get("step_id"), due))
    for s in steps:
        sid, status = s["step_id"], s["status"]
        if status == "retrying":
            due = s.get("next_retry_at")
            when = f" at {due:%H:%M:%S} UTC" if due else ""
            err = f" after {s['error_type']}" if s.get("error_type") else ""
            found.append(Reason("retry", f"step {sid} backs off{err}; attempt "
                                f"{s['attempts'] + 1} starts{when}", sid, due))
        elif status == "scheduled" and sid not in retry_timer and s.get("node_type") not in (
                "delay", "parallel", "loop", "condition"):
            since = s.get("scheduled_at")
            stuck = since is not None and now - since > STUCK_AFTER
            hint = "; no worker has taken it: check that an executor is running" if stuck else ""
            found.append(Reason("queued_step", f"step {sid} waits for a worker"
                                f"{f' (queued {_ago(now, since)})' if since else ''}{hint}",
                                sid))
        elif status == "running" and s.get("node_type") not in ("parallel", "loop"):
            since = s.get("started_at")
            by = f" on {s['worker_id']}" if s.get("worker_id") else ""
            found.append(Reason("running_step", f"step {sid} is running{by}"
                                f"{f' for {_ago(now, since)}' if since else ''}", sid))
    for child in children:
        found.append(Reason("child_run", f"child run {child['run_id']} "
                            f"({child['workflow_id']}) is {child['status']}",
                            child.get("parent_step_id"), link=f"/ui/runs/{child['run_id']}"))
    if not found and run["status"] in ("pending", "running"):
        found.append(Reason("orchestrator", "nothing is scheduled, running or due; the "
                            "orchestrator decides the next step when the last event is "
                            "applied (is an orchestrator worker running?)"))
    return found


async def _explained(db: asyncpg.Pool, run_id: str) -> list[Reason] | None:
    """The explain service's answer, if that package is installed (None otherwise)."""
    try:
        explain = importlib.import_module("bend.explain")
    except ImportError:
        return None
    ask = getattr(explain, "ui_reasons", None)
    if ask is None:
        return None
    answer = await ask(db, run_id)
    return [Reason(r.get("kind", "explain"), r.get("text", str(r)), r.get("step_id"),
                   r.get("until"), r.get("link")) for r in answer]


async def waiting_on(db: asyncpg.Pool, run: Mapping[str, Any],
                     steps: Sequence[Mapping[str, Any]], now: datetime) -> list[Reason]:
    """What the unfinished `run` waits on, from the explain service or the read models."""
    if run["status"] in FINISHED:
        return []
    explained = await _explained(db, run["run_id"])
    if explained is not None:
        return explained
    timers = [dict(r) for r in await db.fetch(
        "SELECT timer_id, step_id, purpose, fire_at FROM timers WHERE run_id = $1 "
        "AND status = 'set' ORDER BY fire_at", run["run_id"])]
    children = [dict(r) for r in await db.fetch(
        "SELECT run_id, workflow_id, status, parent_step_id FROM runs WHERE parent_run_id = $1 "
        "AND status NOT IN ('completed', 'failed', 'cancelled') ORDER BY requested_at",
        run["run_id"])]
    return reasons(run, steps, timers, children, now)
