"""Why a run is not moving: what an unfinished run waits on, told from its read models.

`waiting_on(...)` asks the explain service (`bend.explain`: it also knows circuits, workers and
consumer lag); when that cannot answer in time, `reasons(...)` tells what the read models show
(pure: the run, its steps, its pending timers and its open child runs in, reasons out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from bend.core.errors import BendError
from bend.core.kinds import Begin, Wait, kind_of
from bend.explain import explain_run
from bend.settings import Settings
from projections.queries import live

__all__ = ["Reason", "reasons", "waiting_on"]

log = structlog.get_logger(__name__)

FINISHED = frozenset({"completed", "failed", "cancelled"})
EXPLAIN_S = 5.0  # longest the page waits for the explain service
STUCK_AFTER = timedelta(seconds=30)  # a step queued this long suggests no worker takes it


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing the run waits on; `until` when it is a time, `link` when it is another run."""

    kind: str  # timer | retry | child_run | queued_step | running_step | approval | signal |
    #            orchestrator | cancel
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


def _waits_on(step: Mapping[str, Any]) -> Wait | None:
    """What a begun step of its kind waits on (bend.core.kinds); None for an unknown kind."""
    kind = kind_of(step.get("node_type"))
    return kind.waits_on if kind is not None else None


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
        elif status == "scheduled" and sid not in retry_timer \
                and _waits_on(s) in (Wait.WORKER, Wait.CHILD_RUN, None):
            since = s.get("scheduled_at")
            stuck = since is not None and now - since > STUCK_AFTER
            hint = "; no worker has taken it: check that an executor is running" if stuck else ""
            found.append(Reason("queued_step", f"step {sid} waits for a worker"
                                f"{f' (queued {_ago(now, since)})' if since else ''}{hint}",
                                sid))
        elif status == "scheduled" and (kind := kind_of(s.get("node_type"))) is not None \
                and kind.begins is Begin.AWAIT:
            awaited = kind.model.awaited(s.get("input") or {}, str(run.get("run_id") or ""))
            found.append(Reason(awaited.code, f"step {sid} waits for {awaited.what}", sid))
        elif status == "running" and _waits_on(s) is not Wait.MEMBERS:
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


async def _explained(settings: Settings, db: asyncpg.Pool, run_id: str) -> list[Reason] | None:
    """The explain service's reasons (None when it cannot answer in time: then the read
    models answer)."""
    try:
        answer = await asyncio.wait_for(explain_run(settings, run_id, pool=db), EXPLAIN_S)
    except (BendError, TimeoutError, OSError) as err:
        log.info("ui_explain_unavailable", run_id=run_id, error=str(err)[:300])
        return None
    found = []
    for r in answer.reasons:
        if r.kind == "run_finished":
            continue
        child = r.details.get("child_run_id")
        found.append(Reason(r.kind, r.message, r.details.get("step_id"), r.until,
                            f"/ui/runs/{child}" if child else None))
    return found


async def waiting_on(db: asyncpg.Pool, run: Mapping[str, Any],
                     steps: Sequence[Mapping[str, Any]], now: datetime,
                     settings: Settings | None = None) -> list[Reason]:
    """What the unfinished `run` waits on: the explain service's answer when `settings` are
    given and it answers in time, else what the read models tell."""
    if run["status"] in FINISHED:
        return []
    if settings is not None:
        explained = await _explained(settings, db, run["run_id"])
        if explained:
            return explained
    timers = await live.pending_timers(db, run["run_id"])
    children = await live.open_children(db, run["run_id"])
    return reasons(run, steps, timers, children, now)
