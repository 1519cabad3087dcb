"""Backtests in the read models, against the real Kafka and Postgres: a BacktestRequested and
its runs' records are projected into `backtests`, `backtest_runs` and the runs' `backtest_id`,
a redelivery changes nothing, a fresh rebuild from the log gives the same tables, and a purge of
old runs takes old backtests along."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.projection_history import BASE_TIME, sample_history
from bend.core.commands import Command, StartRun
from bend.core.events import BacktestRequested, Event, RunCompleted, RunRequested, RunStarted
from bend.settings import Settings
from projections.db import connect
from projections.projector import Projector
from projections.purge import purge_finished_runs
from projections.rebuild import rebuild
from tests.integration.test_projections import (  # noqa: F401 - fixtures
    caught_up, fetch, produce, projector, settings, snapshot,
)

TABLES = ("backtests", "backtest_runs", "runs", "run_events", "audit")


def _backtest(history: list[Event | Command]) -> list[Event | Command]:
    """A backtest of the history's first two completed runs, its record and its runs'."""
    sources = [r for r in history if isinstance(r, RunCompleted)][:2]
    wf = sources[0].workflow_id
    at = BASE_TIME + timedelta(days=1)
    definition = {"name": "workflow 0", "steps": [{"id": "s0", "type": "tool"}]}
    pairs = [{"source_run_id": s.run_id or "", "run_id": f"bt-run-{i}"}
             for i, s in enumerate(sources)]
    out: list[Event | Command] = [BacktestRequested(
        event_id="bt-1-requested", workflow_id=wf, workflow_version=2, occurred_at=at,
        backtest_id="bt-1", step_id="s0", changes={"prompt": "x"}, selection={"limit": 2},
        runs=pairs, actor="key:k1")]
    for i, pair in enumerate(pairs):
        env: dict[str, Any] = {"run_id": pair["run_id"], "workflow_id": wf,
                               "workflow_version": 2, "occurred_at": at}
        fork = {"definition": definition, "input": {}, "backtest_id": "bt-1",
                "forked_from_run_id": pair["source_run_id"], "fork_step_id": "s0",
                "replayed": {"s1": {"ok": True}}}
        out += [StartRun(event_id=f"bt-start-{i}", **env, **fork),
                RunRequested(event_id=f"bt-req-{i}", seq=1, **env, **fork),
                RunStarted(event_id=f"bt-started-{i}", seq=2, **env),
                RunCompleted(event_id=f"bt-done-{i}", seq=3, **env, output={"n": i})]
    return out


async def test_a_backtest_is_projected_once_and_rebuilds_to_the_same_tables(
        settings: Settings, projector: Projector) -> None:  # noqa: F811 - the fixtures
    history = sample_history(workflows=1, runs_per_workflow=4, steps=2, tag="bt")
    extra = _backtest(history)
    await produce(settings, [*history, *extra])
    await caught_up(settings, settings.database.schema_name)
    await produce(settings, extra[:1])  # a redelivered BacktestRequested
    await caught_up(settings, settings.database.schema_name)

    (row,) = await fetch(settings, "SELECT * FROM backtests")
    assert (row["backtest_id"], row["step_id"], row["changes"], row["actor"]) == (
        "bt-1", "s0", {"prompt": "x"}, "key:k1")
    pairs = await fetch(settings, "SELECT source_run_id, run_id, position FROM backtest_runs "
                                  "ORDER BY position")
    assert [p["run_id"] for p in pairs] == ["bt-run-0", "bt-run-1"]
    marked = await fetch(settings, "SELECT run_id, status FROM runs WHERE backtest_id = 'bt-1' "
                                   "ORDER BY run_id")
    assert [tuple(r) for r in marked] == [("bt-run-0", "completed"), ("bt-run-1", "completed")]
    audited = await fetch(settings, "SELECT action FROM audit WHERE action LIKE '%backtest%' "
                                    "ORDER BY action")
    assert [a["action"] for a in audited] == ["backtest.start", "run.backtest", "run.backtest"]

    report = await rebuild(settings, f"{settings.kafka.topic_prefix}_rebuilt")
    assert report.failed == 0
    live = await snapshot(settings, settings.database.schema_name, TABLES)
    rebuilt = await snapshot(settings, report.schema, TABLES)
    for table in TABLES:
        assert live[table] == rebuilt[table], f"{table} differs from its rebuild"

    conn = await connect(settings.database.url or "", settings.database.schema_name)
    try:  # purging old runs takes old backtests along
        kept = await purge_finished_runs(conn, BASE_TIME + timedelta(hours=1))
        assert kept.backtests == 0 and await conn.fetchval("SELECT count(*) FROM backtests") == 1
        purged = await purge_finished_runs(conn, BASE_TIME + timedelta(days=2))
        assert purged.backtests == 1
        assert await conn.fetchval("SELECT count(*) FROM backtest_runs") == 0
    finally:
        await conn.close()
