"""The batched projection path (run-side rows folded in memory, written once per batch) gives the
tables the per-record statements give, at any batch size and any interleaving of runs, and a
batch applied again changes nothing."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from bench.projection_history import BASE_TIME, sample_history
from bend.contracts.codec import decode, encode
from bend.core.commands import CancelRun, DecideApproval, SignalRun, StartRun
from bend.core.events import (
    AgentLlmCallRecorded, ApprovalDecided, SignalDelivered, SignalReceived, RunCompleted, RunRequested, RunStarted, StepCancelled, StepScheduled,
    StepSkipped, StepStarted, StepSucceeded, StepTimedOut, TimerFired, TimerSet,
)
from projections.db import connect
from projections.fold import elapsed_ms
from projections.migrate import migrate
from projections.project import Consumed, apply_batch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TABLES = (
    "workflows", "workflow_versions", "runs", "run_events", "steps", "step_attempts", "timers",
    "triggers", "trigger_firings", "dead_letters", "llm_usage", "audit", "components",
    "projection_offsets", "projection_errors",
)


@pytest.fixture()
async def schemas(database_url: str) -> AsyncIterator[Any]:
    """A factory of fresh migrated schemas (connections), dropped afterwards."""
    prefix = f"fold{uuid.uuid4().hex[:8]}"
    conns: list[asyncpg.Connection] = []

    async def make() -> asyncpg.Connection:
        schema = f"{prefix}_{len(conns)}"
        conn = await connect(database_url, schema)
        await migrate(conn, schema)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        await conn.execute(f"DROP SCHEMA {await conn.fetchval('SELECT current_schema()')} "
                           "CASCADE")
        await conn.close()


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    return {t: sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")), key=repr)
            for t in TABLES}


def _odd_runs() -> list[Any]:
    """Runs the sample history lacks: a timed-out attempt, a step cancelled while running, a
    step skipped before it was scheduled, a timer fired before it was set, a cancel request
    before the run was asked for, events of a run never requested, ties in elapsed time, an
    approval decided and a signal kept, then delivered (with the commands that asked)."""
    out: list[Any] = []
    at = BASE_TIME + timedelta(days=1)
    for n in range(3):
        run = f"odd-{n}"
        env = {"run_id": run, "workflow_id": "wf-odd", "workflow_version": 1}
        seq = iter(range(1, 100))

        def ev(cls: type, **fields: Any) -> Any:
            n = next(seq)
            return cls(event_id=f"{run}-{n}", seq=n,
                       occurred_at=at + timedelta(microseconds=1500 * n), **env, **fields)

        if n == 0:
            out.append(CancelRun(event_id=f"{run}-cancel", occurred_at=at, **env, reason="early",
                                 requested_by="dave"))
        if n != 2:
            out.append(StartRun(event_id=f"{run}-start", occurred_at=at, **env, input={"n": n},
                                definition={"steps": []}))
            out.append(ev(RunRequested, input={"n": n, "f": 0.1}, definition={"steps": []}))
        out += [
            ev(RunStarted),
            ev(StepSkipped, step_id="never", reason="branch not taken"),
            ev(TimerFired, timer_id=f"{run}-t", purpose="delay", step_id="a"),
            ev(TimerSet, timer_id=f"{run}-t", purpose="delay", fire_at=at, step_id="a"),
            ev(StepScheduled, step_id="a", node_type="http", attempt=1, input=None,
               timeout_ms=5),
            ev(StepStarted, step_id="a", attempt=1, worker_id="w"),
            ev(StepTimedOut, step_id="a", attempt=1, timeout_ms=5),
            ev(StepScheduled, step_id="a", node_type="http", attempt=2, input=[1, "é"]),
            ev(StepStarted, step_id="a", attempt=2, worker_id="w2"),
            ev(StepSucceeded, step_id="a", attempt=1, output={"late": True}),
            ev(StepScheduled, step_id="b", node_type="agent", attempt=1, input={}),
            ev(StepStarted, step_id="b", attempt=1),
            ev(AgentLlmCallRecorded, step_id="b", call_index=0, model="m", prompt_tokens=3,
               completion_tokens=4, latency_ms=5),
            ev(StepCancelled, step_id="b", reason="run cancelled"),
            SignalRun(event_id=f"{run}-signal", occurred_at=at, **env, name="go",
                      payload={"n": n}, sent_by="key:k"),
            ev(SignalReceived, name="go", payload={"n": n}, sent_by="key:k"),
            ev(StepScheduled, step_id="ask", node_type="approval", attempt=1,
               input={"message": "ok?", "approvers": {"roles": ["admin"], "keys": []}}),
            DecideApproval(event_id=f"{run}-decide", occurred_at=at, **env, step_id="ask",
                           approved=True, decided_by="key:k", answer={"size": n}),
            ev(ApprovalDecided, step_id="ask", approved=True, decided_by="key:k",
               comment="fine", answer={"size": n}),
            ev(StepSucceeded, step_id="ask", attempt=1, output={"size": n}),
            ev(StepScheduled, step_id="w", node_type="wait", attempt=1, input={"signal": "go"}),
            ev(SignalDelivered, step_id="w", name="go", signal_id=f"{run}-17"),
            ev(StepSucceeded, step_id="w", attempt=1, output={"n": n}),
            ev(RunCompleted, output=None, duration_ms=0),
        ]
    return out


def _interleaved(records: list[Any], seed: int) -> list[Consumed]:
    """The records on three partitions per topic (by key, as Kafka spreads them), each key's
    records in order and the keys' records interleaved at random; two re-emitted twins and two
    records sent twice."""
    by_key: dict[tuple[str, Any], list[Any]] = {}
    for r in records:
        by_key.setdefault((r.topic_kind, r.run_id or r.workflow_id), []).append(r)
    twins = [r for r in records if isinstance(r, AgentLlmCallRecorded)][:2]
    for twin in twins:  # an orchestrator that re-decided after a crash: same seq, a new id
        by_key[(twin.topic_kind, twin.run_id)].append(replace(twin, event_id=f"{twin.event_id}!"))
    for again in [r for r in records if isinstance(r, AgentLlmCallRecorded)][2:4]:
        queue = by_key[(again.topic_kind, again.run_id)]
        queue.insert(queue.index(again) + 1, again)  # a producer's retry: the same record
    rng = random.Random(seed)
    queues = [list(q) for q in by_key.values()]
    offsets: dict[tuple[str, int], int] = {}
    out = []
    while queues:
        q = rng.choice(queues)
        r = q.pop(0)
        if not q:
            queues.remove(q)
        key = r.run_id or r.workflow_id
        tp = (r.topic_kind, sum(map(ord, key)) % 3)
        offsets[tp] = offsets.get(tp, -1) + 1
        out.append(Consumed(tp[0], tp[1], offsets[tp], encode(r)))
    return out


@pytest.mark.parametrize("batch", [1, 7, 100, 100_000])
async def test_folded_batches_give_the_tables_the_per_record_statements_give(
        schemas: Any, batch: int) -> None:
    records = _interleaved([*sample_history(workflows=2, runs_per_workflow=8, steps=3),
                            *_odd_runs()], seed=batch)
    reference, folded = await schemas(), await schemas()
    one_by_one = await apply_batch(reference, records, decode, "x", isolate=True)
    results = [await apply_batch(folded, records[i:i + batch], decode, "x")
               for i in range(0, len(records), batch)]
    assert one_by_one.failed == 0 and sum(r.failed for r in results) == 0
    want, got = await snapshot(reference), await snapshot(folded)
    for table in TABLES:
        assert got[table] == want[table], f"{table} differs from the per-record statements"
    assert sum(r.applied for r in results) == one_by_one.applied


async def test_a_batch_applied_twice_leaves_every_table_as_it_was(schemas: Any) -> None:
    records = _interleaved([*sample_history(workflows=2, runs_per_workflow=6, steps=3),
                            *_odd_runs()], seed=1)
    conn = await schemas()
    first = await apply_batch(conn, records, decode, "x")
    before = await snapshot(conn)
    again = await apply_batch(conn, records, decode, "x")
    # The same records at new offsets (a producer that sent its batch twice): the run gate and
    # the rows' own keys keep them out.
    moved = [r._replace(offset=r.offset + len(records)) for r in records]
    resent = await apply_batch(conn, moved, decode, "x")
    after = await snapshot(conn)
    assert first.applied > 0 and first.failed == 0
    assert (again.applied, again.failed) == (0, 0)
    assert resent.failed == 0
    for table in TABLES:
        if table != "projection_offsets":
            assert after[table] == before[table], f"{table} changed when applied again"


async def test_elapsed_milliseconds_round_as_postgres_rounds_them(schemas: Any) -> None:
    conn = await schemas()
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for micros in (0, 499, 500, 1500, 2500, -500, -1500, -2501, 86_400_000_000 * 3 + 777_500):
        end = start + timedelta(microseconds=micros)
        want = await conn.fetchval(
            "SELECT (extract(epoch FROM ($1::timestamptz - $2::timestamptz)) * 1000)::bigint",
            end, start)
        assert elapsed_ms(end, start) == want, micros


async def test_approvals_and_signals_project_their_steps_and_keep_their_events(
        schemas: Any) -> None:
    records = _interleaved(_odd_runs(), seed=3)
    for isolate, conn in ((True, await schemas()), (False, await schemas())):
        result = await apply_batch(conn, records, decode, "x", isolate=isolate)
        assert result.failed == 0
        steps = {r["step_id"]: r for r in await conn.fetch(
            "SELECT step_id, node_type, status, output::text AS output FROM steps "
            "WHERE run_id = 'odd-1'")}
        assert (steps["ask"]["node_type"], steps["ask"]["status"]) == ("approval", "succeeded")
        assert (steps["w"]["node_type"], steps["w"]["status"]) == ("wait", "succeeded")
        assert steps["w"]["output"] == '{"n": 1}'
        types = [r["event_type"] for r in await conn.fetch(
            "SELECT event_type FROM run_events WHERE run_id = 'odd-1' ORDER BY seq")]
        assert {"SignalReceived", "ApprovalDecided", "SignalDelivered"} <= set(types)


async def test_a_run_event_the_gate_cannot_spell_leaves_the_connection_usable(
        schemas: Any) -> None:
    # The gate spells the batch's event rows while Postgres looks for duplicates: a row that
    # fails to spell waits for that query, so the batch can be tried again record by record.
    from projections import runs
    from projections.project import Consumed as Placed

    conn = await schemas()
    at = datetime(2026, 1, 2, tzinfo=timezone.utc)
    good = StepSucceeded(event_id="e-1", run_id="r-1", workflow_id="wf", seq=1,
                         occurred_at=at, step_id="s", output={"ok": 1})
    bad = replace(good, event_id="e-2", seq=2, output={"not json": {1, 2}})
    where = Placed("bend.runs", 0, 0, None)
    async with conn.transaction():
        with pytest.raises(TypeError):
            await runs.gate(conn, [(good, where), (bad, where)])
    assert await runs.gate(conn, [(good, where)]) == {"e-1"}
    assert await conn.fetchval("SELECT count(*) FROM run_events") == 1
