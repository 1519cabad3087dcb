"""Backtests: start one (a workflow's step changed, past runs forked from it), read its
comparison, list them.

Starting checks everything before anything is sent: the workflow and every chosen run belong
to the caller's project, the runs are finished runs of that workflow (not backtest runs
themselves), the step exists in each run's definition and the change is valid for its kind.
Then BacktestRequested goes to the workflows topic and each fork's StartRun to the commands
topic (bend.replay.fork builds them, as for any fork, with the changed definition, the
backtest's id and the recorded outputs to reuse downstream).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bend.core.backtests import (
    RunSide, compare_run, override_step, summarize,
)
from bend.core.commands import StartRun
from bend.core.events import BacktestRequested
from bend.core.fork import replayed_outputs
from bend.kafka.position import Position
from bend.ops.metrics import llm_cost
from bend.replay.errors import NoEvents
from bend.replay.fork import fork_command
from bend.replay.read import read_log
from bend.replay.timeline import fold_events
from bend.security.roles import Principal, require
from bend.services.deps import Deps
from bend.services.errors import ApiError, UnknownRun
from bend.services.workflows import get_workflow
from projections.queries import backtests as queries
from projections.queries import live as live_queries
from projections.queries import runs as run_queries
from projections.queries import workflows as workflow_queries

__all__ = [
    "BacktestSpec", "MAX_RUNS", "NoRunsToBacktest", "RunNotBacktestable", "Started",
    "UnknownBacktest", "get_backtest", "list_backtests", "start_backtest",
]

MAX_RUNS = 200
_FINISHED = ("completed", "failed")


class UnknownBacktest(ApiError):
    """No backtest has this id (in the caller's project)."""

    status = 404

    def __init__(self, backtest_id: str) -> None:
        super().__init__(f"backtest {backtest_id} not found; list backtests with "
                         "GET /api/backtests (or `bend backtest list`)")
        self.backtest_id = backtest_id


class RunNotBacktestable(ApiError):
    """A chosen run cannot be backtested: another workflow's, unfinished, or a backtest run."""

    status = 422

    def __init__(self, run_id: str, why: str) -> None:
        super().__init__(f"run {run_id} cannot be backtested: {why}")
        self.run_id = run_id


class NoRunsToBacktest(ApiError):
    """The filter chose no run."""

    status = 422

    def __init__(self, workflow_id: str, selection: Mapping[str, Any]) -> None:
        super().__init__(f"no finished run of workflow {workflow_id} matches {dict(selection)}; "
                         "widen the filter (status, since, until) or name runs by id")
        self.workflow_id = workflow_id


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    """What to backtest: a workflow's step, its changed fields, and the past runs (by id, or by
    status and time, newest first up to `limit`)."""

    workflow_id: str
    step_id: str
    changes: Mapping[str, Any]
    run_ids: Sequence[str] = ()
    statuses: Sequence[str] = ("completed",)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    live_downstream: bool = False

    def selection(self) -> dict[str, Any]:
        """How the runs were chosen, as recorded."""
        if self.run_ids:
            return {"run_ids": list(self.run_ids)}
        return {"status": list(self.statuses), "limit": self.limit,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None}


@dataclass(frozen=True, slots=True)
class Started:
    """A backtest begun: its id, each source run beside its fork, where its record went."""

    backtest_id: str
    workflow_id: str
    step_id: str
    runs: list[dict[str, str]]
    position: Position
    positions: list[Position] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"backtest_id": self.backtest_id, "workflow_id": self.workflow_id,
                "step_id": self.step_id, "runs": self.runs,
                "position": {"token": self.position.token}}


async def start_backtest(deps: Deps, principal: Principal, spec: BacktestSpec) -> Started:
    """Check the backtest whole, then record it and start its forks; nothing is sent if any
    check fails."""
    require(principal, "runs:replay")
    workflow = await get_workflow(deps, principal, spec.workflow_id)
    latest = await _definition(deps, spec.workflow_id, workflow["latest_version"])
    override_step(latest, spec.step_id, spec.changes, where=f"workflow {spec.workflow_id}")
    sources = await _sources(deps, principal, spec)
    states = await _fold(deps, [r["run_id"] for r in sources])
    backtest_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    commands: list[StartRun] = []
    for row in sources:
        source = states[row["run_id"]]
        assert source.definition is not None  # a finished run of a registered workflow
        changed = override_step(row["definition"], spec.step_id, spec.changes,
                                where=f"run {row['run_id']}")
        commands.append(fork_command(
            source, spec.step_id, now, definition=changed, backtest_id=backtest_id,
            run_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"backtest:{backtest_id}:{row['run_id']}")),
            replayed=None if spec.live_downstream else replayed_outputs(source, spec.step_id)))
    runs = [{"source_run_id": c.forked_from_run_id or "", "run_id": c.run_id or ""}
            for c in commands]
    record = BacktestRequested(
        event_id=str(uuid.uuid4()), workflow_id=spec.workflow_id,
        workflow_version=workflow["latest_version"], occurred_at=now,
        tenant=workflow["tenant"], project=principal.project, backtest_id=backtest_id,
        step_id=spec.step_id, changes=dict(spec.changes), selection=spec.selection(),
        runs=runs, live_downstream=spec.live_downstream, actor=principal.subject)
    position = await deps.producer.send(record)
    positions = [await deps.producer.send(c) for c in commands]
    return Started(backtest_id, spec.workflow_id, spec.step_id, runs, position, positions)


async def _definition(deps: Deps, workflow_id: str, version: int) -> Any:
    found = await workflow_queries.get_version(deps.pool, workflow_id, version)
    return None if found is None else found["definition"]


async def _sources(deps: Deps, principal: Principal, spec: BacktestSpec) -> list[dict[str, Any]]:
    """The runs to backtest, each checked: the caller's project, the workflow, finished."""
    if spec.run_ids:
        if len(spec.run_ids) > MAX_RUNS:
            raise RunNotBacktestable(spec.run_ids[MAX_RUNS], f"a backtest takes at most "
                                     f"{MAX_RUNS} runs")
        rows = []
        for run_id in dict.fromkeys(spec.run_ids):
            row = await run_queries.get_run(deps.pool, principal.project, run_id)
            if row is None:
                raise UnknownRun(run_id)
            _check(row, spec.workflow_id)
            rows.append(row)
        return rows
    unfinished = sorted(set(spec.statuses) - set(_FINISHED))
    if unfinished:
        raise RunNotBacktestable("(filter)", f"status {', '.join(unfinished)} is not an end a "
                                 "backtest can compare; use completed and/or failed")
    listed = await run_queries.list_runs(
        deps.pool, principal.project, workflow_id=spec.workflow_id,
        statuses=list(spec.statuses), since=spec.since, until=spec.until,
        limit=min(spec.limit, MAX_RUNS))
    found = []
    for listed_row in listed:
        row = await run_queries.get_run(deps.pool, principal.project, listed_row["run_id"])
        if row is not None:
            found.append(row)
    if not found:
        raise NoRunsToBacktest(spec.workflow_id, spec.selection())
    return found


def _check(row: Mapping[str, Any], workflow_id: str) -> None:
    if row["workflow_id"] != workflow_id:
        raise RunNotBacktestable(row["run_id"], f"it is a run of workflow {row['workflow_id']}, "
                                 f"not of {workflow_id}")
    if row["backtest_id"] is not None:
        raise RunNotBacktestable(row["run_id"], f"it is a run of backtest {row['backtest_id']}; "
                                 "backtest the run it was forked from")
    if row["status"] not in _FINISHED:
        raise RunNotBacktestable(row["run_id"], f"it is {row['status']}; only completed and "
                                 "failed runs have a record to compare with")


async def _fold(deps: Deps, run_ids: list[str]) -> dict[str, Any]:
    """Each run's recorded events from the log, folded (one read of their partitions)."""
    partitions = await live_queries.event_partitions(deps.pool, run_ids)
    recorded = await read_log(deps.settings, run_ids=run_ids, partitions=partitions or None)
    by_run: dict[str, list[Any]] = {}
    for r in sorted(recorded, key=lambda r: (r.event.seq, r.offset)):
        by_run.setdefault(r.event.run_id or "", []).append(r.event)
    missing = [run_id for run_id in run_ids if run_id not in by_run]
    if missing:
        raise NoEvents(missing[0], "the run-events topic")
    return {run_id: fold_events(by_run[run_id]) for run_id in run_ids}


async def get_backtest(deps: Deps, principal: Principal, backtest_id: str) -> dict[str, Any]:
    """The backtest, each run beside its source, and the aggregate."""
    require(principal, "runs:read")
    row = await queries.get_backtest(deps.pool, principal.project, backtest_id)
    if row is None:
        raise UnknownBacktest(backtest_id)
    pairs = await queries.pairs(deps.pool, backtest_id)
    ids = [p["source_run_id"] for p in pairs] + [p["run_id"] for p in pairs]
    step_id = row["step_id"]
    runs = await queries.runs_of(deps.pool, ids)
    steps = await queries.steps_of(deps.pool, ids, step_id)
    prices = deps.settings.ops.prices()
    usage: dict[str, list[int | float]] = {}
    for call in await queries.calls_of(deps.pool, ids, step_id):
        p = call["payload"] if isinstance(call["payload"], dict) else {}
        prompt, completion = int(p.get("prompt_tokens") or 0), int(p.get("completion_tokens") or 0)
        u = usage.setdefault(call["run_id"], [0, 0, 0, 0.0])
        u[0] += 1
        u[1] += prompt
        u[2] += completion
        u[3] += llm_cost(str(p.get("model") or ""), prompt, completion, prices)

    def side(run_id: str) -> RunSide | None:
        run = runs.get(run_id)
        if run is None:
            return None
        step = steps.get(run_id) or {}
        calls, prompt, completion, cost = usage.get(run_id, [0, 0, 0, 0.0])
        return RunSide(run_id=run_id, status=run["status"], output=run["output"],
                       step_status=step.get("status"), step_output=step.get("output"),
                       error_type=run["error_type"], error_message=run["error_message"],
                       duration_ms=run["duration_ms"], step_duration_ms=step.get("duration_ms"),
                       llm_calls=int(calls), prompt_tokens=int(prompt),
                       completion_tokens=int(completion), cost_usd=float(cost))

    comparisons = []
    for pair in pairs:
        original = side(pair["source_run_id"]) or RunSide(pair["source_run_id"], "unknown")
        comparisons.append(compare_run(original, side(pair["run_id"])))
    summary = summarize(comparisons)
    return {**_header(row), "finished": summary["pending"] == 0, "summary": summary,
            "runs": [c.as_dict() for c in comparisons]}


def _header(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"backtest_id": row["backtest_id"], "workflow_id": row["workflow_id"],
            "workflow_version": row["workflow_version"], "step_id": row["step_id"],
            "changes": row["changes"], "selection": row["selection"],
            "live_downstream": row["live_downstream"], "actor": row["actor"],
            "requested_at": row["requested_at"].isoformat()}


async def list_backtests(deps: Deps, principal: Principal, *, workflow_id: str | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
    """The project's backtests, newest first, with how many runs each has and has finished."""
    require(principal, "runs:read")
    rows = await queries.list_backtests(deps.pool, principal.project, workflow_id=workflow_id,
                                        limit=limit)
    return [{**_header(r), "runs": r["runs"], "finished_runs": r["finished"]} for r in rows]
