"""The projector process's ops server: projection lag per owned partition, liveness, readiness.

Ready means Kafka and Postgres answer and the projector holds partitions of its group. The
lag is measured on a connection of its own, so it never waits behind a batch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import structlog

from bend.kafka.offsets import OffsetReader
from bend.ops import process
from bend.ops.health import assignment_check, kafka_check, postgres_check
from bend.ops.metrics import set_consumer_lag, set_projection_lag
from bend.settings import Settings
from projections.db import connect, database_url
from projections.lag import projection_lag
from projections.projector import Projector

__all__ = ["publish_lag", "run_with_ops"]

log = structlog.get_logger(__name__)


async def publish_lag(projector: Projector, conn: asyncpg.Connection,
                      offsets: OffsetReader) -> None:
    """Set `bend_projection_lag` (and the group's `bend_consumer_lag`) for each owned
    partition: the log's end minus the next offset the read models will apply; and
    `bend_projection_lag_seconds`, how long its records have waited."""
    owned = projector.assignment()
    lag = await projection_lag(conn, offsets, projector.topics) if owned else None
    mine = [p for p in (lag.partitions if lag else ()) if (p.topic, p.partition) in owned]
    lags = {(p.topic, p.partition): p.lag for p in mine}
    now = datetime.now(timezone.utc)
    waits = {(p.topic, p.partition): s for p in mine if (s := p.seconds(now)) is not None}
    set_projection_lag(lags, waits)
    set_consumer_lag(projector.group_id, lags)


async def _lag_loop(projector: Projector, settings: Settings) -> None:
    conn: asyncpg.Connection | None = None
    async with OffsetReader(settings) as offsets:
        try:
            while True:
                await asyncio.sleep(settings.ops.lag_interval_s)
                try:
                    if conn is None or conn.is_closed():
                        conn = await connect(database_url(settings), projector.schema)
                    await publish_lag(projector, conn, offsets)
                except Exception as err:  # no lag this round; the next one reconnects
                    log.warning("projection_lag_unavailable", error=repr(err))
                    if conn is not None:
                        conn.terminate()
                        conn = None
        finally:
            if conn is not None:
                conn.terminate()


async def run_with_ops(projector: Projector, settings: Settings) -> None:
    """Run the projector with its ops server, heartbeat and lag measurement, until cancelled."""
    ops = settings.ops
    checks = {"kafka": kafka_check(settings.kafka, ops.check_timeout_s),
              "postgres": postgres_check(database_url(settings), ops.check_timeout_s),
              "assignment": assignment_check(projector.group_id, projector.assignment)}
    await process.run_with_ops(projector.run, ops, "projector", checks=checks,
                               beside=(_lag_loop(projector, settings),))
