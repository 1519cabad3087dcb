"""The archive end to end, on real Kafka and Postgres: the archiver copies the run log,
commands and dead letters into segment files; retention then deletes every record from the
topics (simulated with DeleteRecords, what retention does to a partition's start); a rebuild
reads the archive and equals the read models projected before; replay and the CLI find a run's
events in the archive; a rebuild without the archive reports the gap; purging old runs from the
read models leaves the archive whole."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from bench.projection_history import sample_history
from bend.server.testing import drop_isolated, isolated_settings
from bend.archive.archiver import Archiver, archived_topics
from bend.archive.status import archive_status
from bend.contracts.topics import topic_for, topic_name
from bend.core.events import Event
from bend.kafka.offsets import OffsetReader
from bend.kafka.producer import RecordProducer
from bend.replay.read import run_events_of
from bend.replay.replay import replay_run
from bend.settings import ArchiveSettings, Settings, get_settings
from projections.db import connect
from projections.lag import projection_lag
from projections.project import projected_topics
from projections.projector import Projector
from projections.purge import purge_finished_runs
from projections.rebuild import rebuild

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TABLES = ("workflows", "workflow_versions", "runs", "run_events", "steps", "step_attempts",
          "timers", "triggers", "trigger_firings", "dead_letters", "llm_usage", "audit",
          "components", "projection_errors")


@pytest.fixture()
async def settings(tmp_path: Path, kafka_bootstrap: str, database_url: str
                   ) -> AsyncIterator[Settings]:
    base = get_settings()
    archive = ArchiveSettings(dir=tmp_path / "archive", segment_records=40, flush_after_s=0.3)
    isolated = isolated_settings(base.model_copy(update={"archive": archive}))
    try:
        yield isolated
    finally:
        await drop_isolated(isolated)


async def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def _snapshot(settings: Settings, schema: str) -> dict[str, list[str]]:
    conn = await connect(settings.database.url or "", schema)
    try:
        return {t: sorted(repr(tuple(r)) for r in await conn.fetch(f"SELECT * FROM {t}"))
                for t in TABLES}
    finally:
        await conn.close()


async def _expire_everything(settings: Settings) -> None:
    """What retention does, for every record now in the archived topics."""
    statuses = await archive_status(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(s.topic, s.partition): RecordsToDelete(
            s.log_ends) for s in statuses if s.log_ends > 0}, timeout_ms=10_000)
    finally:
        await admin.close()


async def test_replay_rebuild_and_purge_read_the_archive_once_the_log_expired(
        settings: Settings) -> None:
    history = sample_history(workflows=2, runs_per_workflow=12, steps=3, tag="archive")
    async with RecordProducer(settings) as producer:
        await producer.send_many(history)
    live = settings.database.schema_name

    # The read models, projected while the log still held everything; the archive, written.
    projector, archiver = Projector(settings), Archiver(settings)
    tasks = [asyncio.create_task(projector.run()), asyncio.create_task(archiver.run())]
    try:
        async with OffsetReader(settings) as offsets:
            async def projected() -> bool:
                conn = await connect(settings.database.url or "", live)
                try:
                    return (await projection_lag(conn, offsets,
                                                 projected_topics(settings))).total == 0
                except Exception:  # not migrated yet
                    return False
                finally:
                    await conn.close()

            await _until(projected, 60, "the projector did not catch up")

        async def archived() -> bool:
            return all(s.behind == 0 for s in await archive_status(settings))

        await _until(archived, 60, "the archiver did not catch up")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert archiver.archived > 0 and archiver.gaps == 0
    statuses = await archive_status(settings)
    assert {s.topic for s in statuses} == set(archived_topics(settings))
    assert sum(s.segments for s in statuses) > len(statuses)  # segments of 40 records

    await _expire_everything(settings)
    statuses = await archive_status(settings)
    assert all(s.log_begins == s.log_ends and s.gap is None for s in statuses)

    # A rebuild from the archive (and the now empty log) equals what was projected.
    report = await rebuild(settings, f"{settings.kafka.topic_prefix}_rebuilt")
    assert report.gaps == () and report.archived > 0
    before = await _snapshot(settings, live)
    assert before["runs"] and before["run_events"]
    assert await _snapshot(settings, report.schema) == before

    # Replay finds a run's events in the archive: the same events the history produced.
    run_id = next(e.run_id for e in history if isinstance(e, Event) and e.run_id)
    produced = [e for e in history if isinstance(e, Event) and e.run_id == run_id
                and topic_for(e, settings) == topic_name("runs", settings)]
    recorded = await run_events_of(settings, run_id)
    assert [r.event for r in recorded] == sorted(produced, key=lambda e: e.seq)
    replayed = await replay_run(settings, run_id)
    assert replayed.checked and replayed.differences == []

    # The CLI says the same, as a user would see it.
    env = {**os.environ, "BEND_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
           "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_ARCHIVE__DIR": str(settings.archive_dir())}
    shown = subprocess.run([sys.executable, "-m", "bend.archive", "status", "--json"], env=env,
                           capture_output=True, text=True, timeout=60, check=True)
    rows = json.loads(shown.stdout)
    assert rows and all(r["gap"] is None and r["behind"] == 0 for r in rows)

    # Without the archive, a rebuild says what it could not read.
    bare = settings.model_copy(update={"archive": ArchiveSettings(
        dir=settings.archive_dir().parent / "empty")})
    blind = await rebuild(bare, f"{settings.kafka.topic_prefix}_blind")
    assert blind.archived == 0 and {g.topic for g in blind.gaps} == set(archived_topics(bare))
    assert not (await _snapshot(settings, blind.schema))["run_events"]

    # Purging old runs from the live read models leaves the archive (and so a rebuild) whole.
    conn = await connect(settings.database.url or "", live)
    try:
        purged = await purge_finished_runs(conn, datetime.now(timezone.utc) + timedelta(days=1),
                                           batch=5)
        left = await conn.fetchval("SELECT count(*) FROM runs")
        steps_left = await conn.fetchval(
            "SELECT count(*) FROM steps WHERE run_id NOT IN (SELECT run_id FROM runs)")
    finally:
        await conn.close()
    finished = [r for r in before["runs"] if any(f"'{s}'" in r for s in
                                                 ("completed", "failed", "cancelled"))]
    assert purged.runs == len(finished) > 5 and purged.events > 0
    assert left == len(before["runs"]) - purged.runs and steps_left == 0
    assert (await run_events_of(settings, run_id)) == recorded
