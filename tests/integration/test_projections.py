"""The projector against the real local Kafka and Postgres: it applies what is produced, its
offsets and seq guard keep redeliveries out, and a killed projector resumes to the state a
fresh rebuild gives, table by table."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient

from bench.projection_history import sample_history
from bend.contracts.admin import ensure_topics
from bend.contracts.codec import decode, encode
from bend.core.events import AgentLlmCallRecorded
from bend.kafka.offsets import OffsetReader
from bend.kafka.producer import RecordProducer
from bend.settings import DatabaseSettings, KafkaSettings, Settings, WorkerSettings
from projections.db import connect
from projections.errors import MigrationChanged
from projections.lag import projection_lag
from projections.migrate import migrate, migrations
from projections.project import Consumed, apply_batch, projected_topics
from projections.projector import Projector
from projections.rebuild import SchemaNotFresh, rebuild

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

READ_MODELS = (
    "workflows", "workflow_versions", "runs", "run_events", "steps", "step_attempts", "timers",
    "triggers", "trigger_firings", "dead_letters", "llm_usage", "audit", "components",
    "projection_offsets", "projection_errors", "backtests", "backtest_runs",
)


@pytest.fixture()
def settings(kafka_bootstrap: str, database_url: str) -> Iterator[Settings]:
    """Topics and a schema of this test's own, deleted afterwards."""
    prefix = f"pj{uuid.uuid4().hex[:10]}"
    s = Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=prefix, default_partitions=3),
        database=DatabaseSettings(url=database_url, schema_name=f"{prefix}_live"),
        workers=WorkerSettings(session_timeout_s=6.0, heartbeat_interval_s=1.0),
    )
    ensure_topics(s)
    yield s
    asyncio.run(_drop_schemas(database_url, prefix))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{prefix}.")]
    for future in admin.delete_topics(mine, operation_timeout=30).values():
        future.result()


async def _drop_schemas(url: str, prefix: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                    f"{prefix}%"):
            await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


async def produce(settings: Settings, records: list[Any]) -> None:
    async with RecordProducer(settings) as producer:
        await producer.send_many(records)


async def lag(settings: Settings, schema: str) -> int:
    conn = await connect(settings.database.url or "", schema)
    try:
        async with OffsetReader(settings) as offsets:
            return (await projection_lag(conn, offsets, projected_topics(settings))).total
    finally:
        await conn.close()


async def caught_up(settings: Settings, schema: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            behind = await lag(settings, schema)
        except asyncpg.UndefinedTableError:  # the projector has not migrated its schema yet
            behind = -1
        if behind == 0:
            return
        assert time.monotonic() < deadline, f"projection still {behind} records behind"
        await asyncio.sleep(0.2)


@pytest.fixture()
async def projector(settings: Settings) -> AsyncIterator[Projector]:
    """A projector running on the test's live schema."""
    p = Projector(settings, max_batch=200)
    task = asyncio.create_task(p.run())
    yield p
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def snapshot(settings: Settings, schema: str,
                   tables: tuple[str, ...] = READ_MODELS) -> dict[str, list[tuple]]:
    conn = await connect(settings.database.url or "", schema)
    try:
        return {t: sorted((tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")), key=repr)
                for t in tables}
    finally:
        await conn.close()


async def fetch(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await connect(settings.database.url or "", settings.database.schema_name)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_the_projector_applies_every_record_produced_to_kafka(
        settings: Settings, projector: Projector) -> None:
    history = sample_history(workflows=2, runs_per_workflow=7, steps=3)
    await produce(settings, history)
    await caught_up(settings, settings.database.schema_name)

    runs = {r["status"]: r["n"] for r in await fetch(
        settings, "SELECT status, count(*) AS n FROM runs GROUP BY status")}
    assert runs == {"completed": 10, "failed": 2, "cancelled": 2}
    workflows = await fetch(settings, "SELECT name, status, latest_version FROM workflows "
                                      "ORDER BY name")
    assert [tuple(w) for w in workflows] == [("workflow 0 v2", "active", 2),
                                             ("workflow 1 v2", "paused", 2)]
    retried = await fetch(settings, "SELECT attempts, status FROM steps WHERE step_id = 's0' "
                                    "AND attempts = 2")
    assert len(retried) == 5 and {r["status"] for r in retried} == {"succeeded"}
    calls = sum(isinstance(r, AgentLlmCallRecorded) for r in history)
    (usage,) = await fetch(settings, "SELECT sum(calls) AS c, sum(completion_tokens) AS t "
                                     "FROM llm_usage")
    assert (usage["c"], usage["t"]) == (calls, 5 * calls)
    (events,) = await fetch(settings, "SELECT count(*) AS n FROM run_events")
    assert events["n"] == sum(1 for r in history if r.topic_kind == "runs")
    cancelled = await fetch(settings, "SELECT cancel_requested_by, error_message FROM runs "
                                      "WHERE status = 'cancelled'")
    assert {tuple(r) for r in cancelled} == {("carol", "no longer needed")}
    assert len(await fetch(settings, "SELECT 1 FROM trigger_firings")) == 4
    assert len(await fetch(settings, "SELECT 1 FROM dead_letters")) == 1
    assert len(await fetch(settings, "SELECT 1 FROM timers WHERE status = 'fired'")) == 5
    assert await fetch(settings, "SELECT * FROM projection_errors") == []


async def test_a_run_asked_for_shows_as_queued_until_the_orchestrator_takes_it(
        settings: Settings, projector: Projector) -> None:
    start = next(r for r in sample_history(1, 1, 1, tag="q") if r.event_type == "StartRun")
    await produce(settings, [start])
    await caught_up(settings, settings.database.schema_name)
    (run,) = await fetch(settings, "SELECT status, input FROM runs WHERE run_id = $1",
                         start.run_id)
    assert (run["status"], run["input"]) == ("queued", {"n": 0})


async def test_a_redelivered_batch_changes_nothing(settings: Settings) -> None:
    schema = settings.database.schema_name
    history = sample_history(workflows=1, runs_per_workflow=4, steps=2, tag="redeliver")
    records = [Consumed("t", 0, offset, encode(r)) for offset, r in enumerate(history)]
    conn = await connect(settings.database.url or "", schema)
    try:
        await migrate(conn, schema)
        first = await apply_batch(conn, records, decode, schema)
        before = await snapshot(settings, schema)
        again = await apply_batch(conn, records, decode, schema)
        overlapping = await apply_batch(conn, records[len(records) // 2:], decode, schema)
    finally:
        await conn.close()
    assert first.applied > 0 and first.failed == 0
    assert (again.applied, overlapping.applied) == (0, 0)
    assert await snapshot(settings, schema) == before


async def test_a_re_emitted_run_event_at_a_new_offset_is_not_applied_twice(
        settings: Settings) -> None:
    schema = settings.database.schema_name
    history = sample_history(workflows=1, runs_per_workflow=1, steps=1, tag="reemit")
    call = next(r for r in history if isinstance(r, AgentLlmCallRecorded))
    # An orchestrator that crashed after producing re-decides: same seq, a new event id.
    twin = replace(call, event_id=str(uuid.uuid4()))
    records = [Consumed("t", 0, offset, encode(r)) for offset, r in enumerate([*history, twin])]
    conn = await connect(settings.database.url or "", schema)
    try:
        await migrate(conn, schema)
        await apply_batch(conn, records, decode, schema)
        usage = await conn.fetchval("SELECT sum(calls) FROM llm_usage")
        logged = await conn.fetchval("SELECT count(*) FROM run_events WHERE seq = $1", call.seq)
    finally:
        await conn.close()
    calls = sum(isinstance(r, AgentLlmCallRecorded) for r in history)
    assert (usage, logged) == (calls, 1)


async def test_a_projector_killed_mid_stream_resumes_to_what_a_fresh_rebuild_gives(
        settings: Settings) -> None:
    schema = settings.database.schema_name
    history = sample_history(workflows=3, runs_per_workflow=40, steps=3, tag="kill")
    await produce(settings, history)
    env = {**os.environ, "BEND_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
           "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_KAFKA__DEFAULT_PARTITIONS": "3", "BEND_DATABASE_URL": settings.database.url,
           "BEND_DATABASE__SCHEMA_NAME": schema, "BEND_LOG__LEVEL": "WARNING"}
    child = subprocess.Popen([sys.executable, "-m", "projections", "run", "--max-batch", "20"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await _wait_for_some_offsets(settings, schema, child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    behind = await lag(settings, schema)
    assert 0 < behind < len(history), "the kill landed mid-stream"

    resumed = Projector(settings, max_batch=200)
    task = asyncio.create_task(resumed.run())
    try:
        await caught_up(settings, schema, timeout_s=90)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    report = await rebuild(settings, f"{settings.kafka.topic_prefix}_rebuilt")
    assert report.records == len(history) and report.failed == 0
    live = await snapshot(settings, schema)
    rebuilt = await snapshot(settings, report.schema)
    for table in READ_MODELS:
        assert live[table] == rebuilt[table], f"{table} differs from its rebuild"


async def _wait_for_some_offsets(settings: Settings, schema: str, child: subprocess.Popen,
                                 timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the projector applied nothing in time"
        try:
            rows = await fetch(settings, "SELECT coalesce(sum(next_offset), 0) AS n "
                                         "FROM projection_offsets WHERE next_offset > 0")
            if rows[0]["n"] >= 100:
                return
        except asyncpg.UndefinedTableError:
            pass  # not migrated yet
        await asyncio.sleep(0.05)


async def test_a_rebuild_over_any_number_of_lanes_gives_the_live_projection(
        settings: Settings, projector: Projector) -> None:
    # Each run's StartRun (commands topic) and events (run topic) are in the same lane; small
    # batches make each lane commit many transactions beside the others.
    history = sample_history(workflows=3, runs_per_workflow=30, steps=3, tag="lanes")
    await produce(settings, history)
    await caught_up(settings, settings.database.schema_name)
    live = await snapshot(settings, settings.database.schema_name)
    for lanes in (1, 2, 3):
        report = await rebuild(settings, f"{settings.kafka.topic_prefix}_lanes{lanes}",
                               max_batch=150, lanes=lanes)
        assert (report.records, report.failed) == (len(history), 0)
        rebuilt = await snapshot(settings, report.schema)
        for table in READ_MODELS:
            assert rebuilt[table] == live[table], f"{table} differs over {lanes} lane(s)"


async def test_a_rebuild_refuses_a_schema_that_holds_tables(settings: Settings) -> None:
    conn = await connect(settings.database.url or "", settings.database.schema_name)
    try:
        await migrate(conn, settings.database.schema_name)
    finally:
        await conn.close()
    with pytest.raises(SchemaNotFresh, match="rebuild into a new schema name"):
        await rebuild(settings, settings.database.schema_name)


async def test_migrations_apply_once_even_when_two_processes_start_together(
        settings: Settings) -> None:
    schema = settings.database.schema_name
    conns = [await connect(settings.database.url or "", schema) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(c, schema) for c in conns))
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY 1")
    finally:
        for c in conns:
            await c.close()
    assert sorted([*results[0], *results[1]]) == [m.version for m in migrations()]
    assert [r["version"] for r in versions] == [m.version for m in migrations()]


async def test_an_edited_applied_migration_is_refused(settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    schema = settings.database.schema_name
    conn = await connect(settings.database.url or "", schema)
    try:
        await migrate(conn, schema)
        edited = (replace(migrations()[0], sql=migrations()[0].sql + "\n-- edited"),
                  *migrations()[1:])
        monkeypatch.setattr("projections.migrate.migrations", lambda: edited)
        with pytest.raises(MigrationChanged, match="never edit an applied migration"):
            await migrate(conn, schema)
    finally:
        await conn.close()



def _projector_process(settings: Settings, schema: str) -> subprocess.Popen:
    env = {**os.environ, "BEND_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
           "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_KAFKA__DEFAULT_PARTITIONS": "3", "BEND_DATABASE_URL": settings.database.url,
           "BEND_DATABASE__SCHEMA_NAME": schema, "BEND_LOG__LEVEL": "WARNING",
           "BEND_OPS__PORT": "0"}
    return subprocess.Popen([sys.executable, "-m", "projections", "run", "--max-batch", "20"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _group_members_with_partitions(settings: Settings) -> int:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    group = f"{settings.kafka.topic_prefix}-projector"
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return sum(1 for m in desc.members
               if m.assignment and m.assignment.topic_partitions)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
async def test_two_projectors_share_the_partitions_and_one_stopped_mid_stream_loses_nothing(
        settings: Settings, how: signal.Signals) -> None:
    schema = settings.database.schema_name
    first = _projector_process(settings, schema)
    second = _projector_process(settings, schema)
    try:
        deadline = time.monotonic() + 60
        while _group_members_with_partitions(settings) < 2:
            assert first.poll() is None and second.poll() is None, "a projector exited"
            assert time.monotonic() < deadline, "the two projectors did not share partitions"
            await asyncio.sleep(0.2)
        history = sample_history(workflows=3, runs_per_workflow=60, steps=3, tag=how.name)
        await produce(settings, history)
        await _wait_for_some_offsets(settings, schema, first)
        first.send_signal(how)
        first.wait(timeout=30)
        assert await lag(settings, schema) > 0, "the stop landed mid-stream"
        await caught_up(settings, schema, timeout_s=90)  # the survivor took the partitions
        assert second.poll() is None
    finally:
        for child in (first, second):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=30)
    report = await rebuild(settings, f"{settings.kafka.topic_prefix}_rebuilt")
    assert report.records == len(history) and report.failed == 0
    live = await snapshot(settings, schema)
    rebuilt = await snapshot(settings, report.schema)
    for table in READ_MODELS:
        assert live[table] == rebuilt[table], f"{table} differs from its rebuild"


async def test_a_record_the_projector_cannot_apply_is_dead_lettered_with_the_reason(
        settings: Settings, projector: Projector) -> None:
    from aiokafka import AIOKafkaProducer

    from bend.contracts.topics import topic_name
    from bend.core.commands import StartRun

    history = sample_history(workflows=1, runs_per_workflow=2, steps=1, tag="dlq")
    start = next(r for r in history if isinstance(r, StartRun))
    nul = replace(start, event_id=str(uuid.uuid4()), run_id="nul-run", idempotency_key="a\x00")
    await produce(settings, [*history, nul])
    raw = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await raw.start()
    try:
        garbage = await raw.send_and_wait(topic_name("runs", settings), b"\xc3\x01garbage",
                                          key=b"run-x")
    finally:
        await raw.stop()
    await caught_up(settings, settings.database.schema_name)

    letters = {r["source_topic"]: r for r in await fetch(
        settings, "SELECT source_topic, source_offset, error_type, reason, key, payload "
                  "FROM dead_letters WHERE reason LIKE 'not projected: %'")}
    assert set(letters) == {topic_name("commands", settings), topic_name("runs", settings)}
    corrupt = letters[topic_name("runs", settings)]
    assert (corrupt["source_offset"], corrupt["key"], corrupt["payload"]) == (
        garbage.offset, b"run-x", b"\xc3\x01garbage")
    assert corrupt["error_type"] == "CorruptPayload"
    assert letters[topic_name("commands", settings)]["reason"].startswith("not projected: ")
    assert len(await fetch(settings, "SELECT 1 FROM projection_errors")) == 2
    runs = await fetch(settings, "SELECT run_id FROM runs")
    assert len(runs) == 2 and "nul-run" not in {r["run_id"] for r in runs}
