"""A batch's run-side rows folded in memory: each row read once, its events applied in log
order, its final value written once.

The records that change `runs`, `steps`, `step_attempts`, `timers` and `llm_usage` (run and step
lifecycle events, StartRun, CancelRun, timers, LLM calls) are grouped by the row they touch.
`write` loads those rows (one query per table), folds each row's records with the same rules
as the per-record statements in `projections.runs`, `steps`, `timers` and `llm_usage` (which
stay the reference, used when a batch is applied record by record), and writes each table's
changed rows in one statement. JSON columns travel as JSON text both ways, so a value read back
is written unchanged.

Only `runs` has two writers (the commands topic's projector and the run topic's): its rows are
loaded `FOR UPDATE`, and a row another projector created after the load is read again and
folded afresh.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeGuard, cast

import asyncpg

from bend.core.commands import CancelRun, StartRun
from bend.core.events import (
    AgentLlmCallRecorded, RunCancelled, RunCompleted, RunFailed, RunRequested, RunStarted,
    StepCancelled, StepFailed, StepRetryScheduled, StepScheduled, StepSkipped, StepStarted,
    StepSucceeded, StepTimedOut, TimerFired, TimerSet,
)

__all__ = ["Fold", "FOLDED", "elapsed_ms"]

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, Postgres type); jsonb travels as text
    names: tuple[str, ...] = ()  # the columns' names, filled in once (read per row folded)
    blank: Row = field(default_factory=dict)  # every column None: a new row's start

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c for c, _ in self.columns))
        object.__setattr__(self, "blank", dict.fromkeys(self.names))

    def select_list(self) -> str:
        return ", ".join(f"{c}::text AS {c}" if t == "jsonb" else c for c, t in self.columns)

    def _unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        types = ", ".join(f"${i}::{'text' if t == 'jsonb' else t}[]"
                          for i, (_, t) in enumerate(columns, 1))
        return f"unnest({types}) AS u ({', '.join(c for c, _ in columns)})"

    def _values(self) -> str:
        return ", ".join(f"u.{c}::jsonb" if t == "jsonb" else f"u.{c}" for c, t in self.columns)

    def load_sql(self, lock: bool = False) -> str:
        keys = [(c, t) for c, t in self.columns if c in self.key]
        where = (f"({', '.join(self.key)}) IN (SELECT {', '.join(self.key)} FROM "
                 f"{self._unnest(keys)})")
        order = f" ORDER BY {', '.join(self.key)} FOR UPDATE" if lock else ""
        return f"SELECT {self.select_list()} FROM {self.name} WHERE {where}{order}"

    def upsert_sql(self) -> str:
        rest = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.names if c not in self.key)
        return (f"INSERT INTO {self.name} ({', '.join(self.names)}) "
                f"SELECT {self._values()} FROM {self._unnest(self.columns)} "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {rest}")

    def insert_new_sql(self) -> str:
        return (f"INSERT INTO {self.name} ({', '.join(self.names)}) "
                f"SELECT {self._values()} FROM {self._unnest(self.columns)} "
                f"ON CONFLICT ({', '.join(self.key)}) DO NOTHING RETURNING {', '.join(self.key)}")

    def update_sql(self) -> str:
        values = self._values().split(", ")
        sets = ", ".join(f"{c} = {v}" for c, v in zip(self.names, values, strict=False)
                         if c not in self.key)
        on = " AND ".join(f"t.{c} = u.{c}" for c in self.key)
        return f"UPDATE {self.name} t SET {sets} FROM {self._unnest(self.columns)} WHERE {on}"

    def args(self, rows: Sequence[Row]) -> list[list[Any]]:
        return [[r[c] for r in rows] for c in self.names]


_RUNS = _Table("runs", ("run_id",), (
    ("run_id", "text"), ("workflow_id", "text"), ("workflow_version", "integer"),
    ("status", "text"), ("input", "jsonb"), ("output", "jsonb"), ("definition", "jsonb"),
    ("error_type", "text"), ("error_message", "text"), ("failed_step_id", "text"),
    ("idempotency_key", "text"), ("trigger_id", "text"), ("parent_run_id", "text"),
    ("parent_step_id", "text"), ("forked_from_run_id", "text"), ("fork_step_id", "text"),
    ("cancel_requested_at", "timestamptz"), ("cancel_requested_by", "text"),
    ("cancel_reason", "text"), ("tenant", "text"), ("project", "text"),
    ("requested_at", "timestamptz"), ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"), ("duration_ms", "bigint"), ("last_seq", "bigint"),
    ("last_event_at", "timestamptz"), ("backtest_id", "text"),
))
_STEPS = _Table("steps", ("run_id", "step_id"), (
    ("run_id", "text"), ("step_id", "text"), ("node_type", "text"), ("status", "text"),
    ("attempts", "integer"), ("input", "jsonb"), ("output", "jsonb"), ("error_type", "text"),
    ("error_message", "text"), ("reason", "text"), ("worker_id", "text"),
    ("timeout_ms", "bigint"), ("next_retry_at", "timestamptz"), ("scheduled_at", "timestamptz"),
    ("started_at", "timestamptz"), ("finished_at", "timestamptz"), ("duration_ms", "bigint"),
))
_ATTEMPTS = _Table("step_attempts", ("run_id", "step_id", "attempt"), (
    ("run_id", "text"), ("step_id", "text"), ("attempt", "integer"), ("status", "text"),
    ("input", "jsonb"), ("output", "jsonb"), ("error_type", "text"), ("error_message", "text"),
    ("retryable", "boolean"), ("worker_id", "text"), ("idempotency_key", "text"),
    ("scheduled_at", "timestamptz"), ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"), ("duration_ms", "bigint"),
))
_TIMERS = _Table("timers", ("timer_id",), (
    ("timer_id", "text"), ("run_id", "text"), ("step_id", "text"), ("purpose", "text"),
    ("status", "text"), ("fire_at", "timestamptz"), ("set_at", "timestamptz"),
    ("fired_at", "timestamptz"),
))
_LLM = _Table("llm_usage", ("run_id", "model"), (
    ("run_id", "text"), ("model", "text"), ("workflow_id", "text"), ("calls", "bigint"),
    ("prompt_tokens", "bigint"), ("completion_tokens", "bigint"), ("latency_ms", "bigint"),
))
# The step attempts of the steps in a batch, by step (Skipped and Cancelled close them all).
_LOAD_ATTEMPTS = (f"SELECT {_ATTEMPTS.select_list()} FROM step_attempts WHERE (run_id, step_id) IN "
                  "(SELECT * FROM unnest($1::text[], $2::text[]))")

_RUN_RECORDS = (StartRun, CancelRun, RunRequested, RunStarted, RunCompleted, RunFailed,
                RunCancelled)
_STEP_RECORDS = (StepScheduled, StepStarted, StepSucceeded, StepFailed, StepTimedOut,
                 StepRetryScheduled, StepSkipped, StepCancelled)
FOLDED: tuple[type, ...] = (*_RUN_RECORDS, *_STEP_RECORDS, TimerSet, TimerFired,
                            AgentLlmCallRecorded)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(value: Any) -> str | None:
    # As the connection's JSONB codec writes it (projections.db).
    return None if value is None else _ENCODE(value)


def elapsed_ms(end: datetime, start: datetime) -> int:
    """`(extract(epoch FROM (end - start)) * 1000)::bigint`: milliseconds, ties away from zero."""
    delta = end - start
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    ms, rest = divmod(abs(micros), 1000)
    ms += rest >= 500
    return ms if micros >= 0 else -ms


class Fold:
    """The folded rows of one batch; `add` records in log order, then `write` once."""

    def __init__(self) -> None:
        self._runs: dict[str, list[Any]] = defaultdict(list)
        self._bumps: dict[str, tuple[int, datetime]] = {}
        self._steps: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self._timers: dict[str, list[Any]] = defaultdict(list)
        self._llm: dict[tuple[str | None, str], list[AgentLlmCallRecorded]] = defaultdict(list)

    def add(self, record: Any) -> bool:
        """Take `record` if it changes a folded row; False if it is not folded here."""
        match record:
            case _ if isinstance(record, _RUN_RECORDS):
                self._runs[cast(str, record.run_id)].append(record)  # checked by the gate
            case _ if isinstance(record, _STEP_RECORDS):
                self._steps[(cast(str, record.run_id), record.step_id)].append(record)
            case TimerSet() | TimerFired():
                self._timers[record.timer_id].append(record)
            case AgentLlmCallRecorded():
                self._llm[(record.run_id, record.model)].append(record)
            case _:
                return False
        return True

    def bump(self, run_id: str, seq: int, occurred_at: datetime) -> None:
        """After the batch's records, move the run's `last_seq` to `seq` if it is newer."""
        self._bumps[run_id] = (seq, occurred_at)

    async def write(self, conn: asyncpg.Connection) -> None:
        """Load the touched rows, fold, and write each table's changed rows in one statement."""
        await self._write_runs(conn, set(self._runs) | set(self._bumps))
        if self._steps:
            await self._write_steps(conn)
        if self._timers:
            rows = await _load(conn, _TIMERS, list(self._timers))
            out = [_fold_timer(rows.get((k,)), k, evs) for k, evs in self._timers.items()]
            await conn.execute(_TIMERS.upsert_sql(), *_TIMERS.args(out))
        if self._llm:
            rows = await _load(conn, _LLM, list(self._llm))
            out = [_fold_llm(rows.get(k), evs) for k, evs in self._llm.items()]
            await conn.execute(_LLM.upsert_sql(), *_LLM.args(out))

    async def _write_runs(self, conn: asyncpg.Connection, run_ids: set[str]) -> None:
        if not run_ids:
            return
        loaded = await _load(conn, _RUNS, sorted(run_ids), lock=True)
        changed: list[Row] = []
        created: list[Row] = []
        for run_id in run_ids:
            before = loaded.get((run_id,))
            after = self._fold_run(run_id, before)
            if after is not None and after != before:
                (changed if before is not None else created).append(after)
        if changed:
            await conn.execute(_RUNS.update_sql(), *_RUNS.args(changed))
        if not created:
            return
        created.sort(key=lambda r: r["run_id"])  # two projectors creating rows: one order
        made = {r["run_id"] for r in await conn.fetch(_RUNS.insert_new_sql(),
                                                      *_RUNS.args(created))}
        raced = sorted(r["run_id"] for r in created if r["run_id"] not in made)
        if raced:  # another projector created these rows since the load: fold onto its rows
            loaded = await _load(conn, _RUNS, raced, lock=True)
            again = [after for run_id in raced
                     if (after := self._fold_run(run_id, loaded.get((run_id,)))) is not None]
            await conn.execute(_RUNS.update_sql(), *_RUNS.args(again))

    def _fold_run(self, run_id: str, row: Row | None) -> Row | None:
        row = None if row is None else dict(row)
        for record in self._runs.get(run_id, ()):
            row = _fold_run_record(row, record)
        if row is not None and run_id in self._bumps:
            seq, at = self._bumps[run_id]
            if row["last_seq"] < seq:
                row["last_seq"], row["last_event_at"] = seq, at
        return row

    async def _write_steps(self, conn: asyncpg.Connection) -> None:
        keys = list(self._steps)
        steps = await _load(conn, _STEPS, keys)
        attempts: dict[tuple[str, str], dict[int, Row]] = defaultdict(dict)
        for r in await conn.fetch(_LOAD_ATTEMPTS, [k[0] for k in keys], [k[1] for k in keys]):
            attempts[(r["run_id"], r["step_id"])][r["attempt"]] = dict(r)
        step_rows, attempt_rows = [], []
        for key, events in self._steps.items():
            step, tries = steps.get(key), attempts[key]
            before = {n: dict(a) for n, a in tries.items()}
            for ev in events:
                step = _fold_step(step, tries, ev)
            if step is not None and step != steps.get(key):
                step_rows.append(step)
            attempt_rows += [a for n, a in tries.items() if a != before.get(n)]
        if step_rows:
            await conn.execute(_STEPS.upsert_sql(), *_STEPS.args(step_rows))
        if attempt_rows:
            await conn.execute(_ATTEMPTS.upsert_sql(), *_ATTEMPTS.args(attempt_rows))


async def _load(conn: asyncpg.Connection, table: _Table, keys: Sequence[Hashable], *,
                lock: bool = False) -> dict[tuple[Any, ...], Row]:
    columns = list(zip(*[k if isinstance(k, tuple) else (k,) for k in keys], strict=False))
    rows = await conn.fetch(table.load_sql(lock), *[list(c) for c in columns])
    return {tuple(r[c] for c in table.key): dict(r) for r in rows}


def _fold_run_record(row: Row | None, rec: Any) -> Row | None:
    # projections.runs: _QUEUE, _REQUESTED, _STARTED, _COMPLETED, _FAILED, _CANCELLED,
    # _CANCEL_REQUESTED.
    if isinstance(rec, StartRun | RunRequested):
        requested = isinstance(rec, RunRequested)
        if row is not None and not requested:
            return row
        fields = {
            "run_id": rec.run_id, "workflow_id": rec.workflow_id,
            "workflow_version": rec.workflow_version, "input": _json(rec.input),
            "definition": _json(rec.definition), "idempotency_key": rec.idempotency_key,
            "trigger_id": rec.trigger_id, "parent_run_id": rec.parent_run_id,
            "parent_step_id": rec.parent_step_id, "forked_from_run_id": rec.forked_from_run_id,
            "fork_step_id": rec.fork_step_id, "tenant": rec.tenant, "project": rec.project,
            "requested_at": rec.occurred_at, "backtest_id": rec.backtest_id,
        }
        if row is None:
            row = _RUNS.blank | {"last_seq": 0}
            row["status"] = "pending" if requested else "queued"
        elif row["status"] == "queued":
            row["status"] = "pending"
        row.update(fields)
        return row
    if row is None:
        return None
    at = rec.occurred_at
    match rec:
        case RunStarted():
            row["started_at"] = at
            if row["status"] in ("queued", "pending"):
                row["status"] = "running"
        case RunCompleted():
            row.update(status="completed", output=_json(rec.output), finished_at=at,
                       duration_ms=rec.duration_ms if rec.duration_ms is not None
                       and rec.duration_ms > 0 else _elapsed(row, at))
        case RunFailed():
            row.update(status="failed", error_type=rec.error_type, error_message=rec.message,
                       failed_step_id=rec.step_id, finished_at=at, duration_ms=_elapsed(row, at))
        case RunCancelled():
            row.update(status="cancelled", error_type="RunCancelled", error_message=rec.reason,
                       finished_at=at, duration_ms=_elapsed(row, at))
        case CancelRun():
            if row["cancel_requested_at"] is None:
                row.update(cancel_requested_at=at, cancel_requested_by=rec.requested_by,
                           cancel_reason=rec.reason)
    return row


def _elapsed(row: Row, at: datetime) -> int | None:
    start = row["started_at"] or row["requested_at"]
    return None if start is None or at is None else elapsed_ms(at, start)


_OUTCOME_CLEARED: Row = dict.fromkeys(("output", "error_type", "error_message", "reason",
                                       "next_retry_at", "finished_at", "duration_ms"))


def _fold_step(step: Row | None, tries: dict[int, Row], ev: Any) -> Row | None:
    # projections.steps: _SCHEDULED, _STARTED, _SUCCEEDED, _FAILED, _TIMED_OUT, _RETRYING,
    # _CLOSED. A statement's step_attempts part and its steps part see the same rows as before
    # the statement, so each part is folded from the rows as they were.
    at = ev.occurred_at
    match ev:
        case StepScheduled():
            given = _json(ev.input)  # once: the attempt's row and the step's hold the same
            if ev.attempt not in tries:
                tries[ev.attempt] = _ATTEMPTS.blank | {
                    "run_id": ev.run_id, "step_id": ev.step_id, "attempt": ev.attempt,
                    "status": "scheduled", "input": given,
                    "idempotency_key": ev.idempotency_key, "scheduled_at": at}
            if step is None:
                return _STEPS.blank | {
                    "run_id": ev.run_id, "step_id": ev.step_id, "node_type": ev.node_type,
                    "status": "scheduled", "attempts": ev.attempt, "input": given,
                    "timeout_ms": ev.timeout_ms, "scheduled_at": at}
            attempts = [n for n in (step["attempts"], ev.attempt) if n is not None]
            return step | _OUTCOME_CLEARED | {
                "node_type": ev.node_type, "status": "scheduled",
                "attempts": max(attempts) if attempts else None, "input": given,
                "timeout_ms": ev.timeout_ms}
        case StepStarted():
            _attempt(tries, ev.attempt, status="running", started_at=at, worker_id=ev.worker_id)
            if _current(step, ev.attempt):
                step = step | {"status": "running", "started_at": step["started_at"] or at,
                               "worker_id": ev.worker_id}
        case StepSucceeded():
            done = {"status": "succeeded", "output": _json(ev.output), "finished_at": at,
                    "duration_ms": ev.duration_ms}
            _attempt(tries, ev.attempt, **done)
            if _current(step, ev.attempt):
                step = step | done
        case StepFailed():
            _attempt(tries, ev.attempt, status="failed", error_type=ev.error_type,
                     error_message=ev.message, retryable=ev.retryable, finished_at=at)
            if _current(step, ev.attempt):
                step = step | {"status": "failed", "error_type": ev.error_type,
                               "error_message": ev.message, "finished_at": at}
        case StepTimedOut():
            timed_out = {"status": "timed_out", "finished_at": at, "error_type": "StepTimedOut",
                         "error_message": f"attempt {ev.attempt} ran past {ev.timeout_ms} ms"}
            _attempt(tries, ev.attempt, **timed_out)
            if _current(step, ev.attempt):
                step = step | timed_out
        case StepRetryScheduled():
            if step is not None:
                step = step | {"status": "retrying", "next_retry_at": ev.retry_at}
        case StepSkipped() | StepCancelled():
            status = "skipped" if isinstance(ev, StepSkipped) else "cancelled"
            for row in tries.values():
                if row["status"] in ("scheduled", "running"):
                    row.update(status=status, finished_at=at)
            if step is None:
                return _STEPS.blank | {
                    "run_id": ev.run_id, "step_id": ev.step_id, "node_type": "", "attempts": 0,
                    "status": status, "reason": ev.reason, "finished_at": at}
            step = step | {"status": status, "reason": ev.reason, "finished_at": at,
                           "next_retry_at": None}
    return step


def _attempt(tries: dict[int, Row], attempt: int, **values: Any) -> None:
    if attempt in tries:
        tries[attempt].update(values)


def _current(step: Row | None, attempt: int | None) -> TypeGuard[Row]:
    # `WHERE ... AND attempts <= $attempt`
    return step is not None and attempt is not None and step["attempts"] is not None \
        and step["attempts"] <= attempt


def _fold_timer(row: Row | None, timer_id: str, events: Sequence[Any]) -> Row:
    # projections.timers: _SET, _FIRED.
    for ev in events:
        if row is None:
            row = {"timer_id": timer_id, "run_id": ev.run_id, "step_id": ev.step_id,
                   "purpose": ev.purpose, "fire_at": None, "set_at": None, "fired_at": None,
                   "status": "set" if isinstance(ev, TimerSet) else "fired"}
            if isinstance(ev, TimerSet):
                row.update(fire_at=ev.fire_at, set_at=ev.occurred_at)
            else:
                row["fired_at"] = ev.occurred_at
        elif isinstance(ev, TimerSet):
            row.update(fire_at=ev.fire_at, set_at=ev.occurred_at,
                       status="fired" if row["status"] == "fired" else "set")
        else:
            row.update(status="fired", fired_at=ev.occurred_at)
    assert row is not None
    return row


def _fold_llm(row: Row | None, calls: Sequence[AgentLlmCallRecorded]) -> Row:
    # projections.llm_usage: _ADD.
    for ev in calls:
        if row is None:
            row = {"run_id": ev.run_id, "model": ev.model, "workflow_id": ev.workflow_id,
                   "calls": 1, "prompt_tokens": ev.prompt_tokens,
                   "completion_tokens": ev.completion_tokens, "latency_ms": ev.latency_ms}
        else:
            row = row | {"calls": row["calls"] + 1,
                         "prompt_tokens": row["prompt_tokens"] + ev.prompt_tokens,
                         "completion_tokens": row["completion_tokens"] + ev.completion_tokens,
                         "latency_ms": row["latency_ms"] + ev.latency_ms}
    assert row is not None
    return row
