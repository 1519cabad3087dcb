"""The archiver process's ops server: archive lag per owned partition, gaps, liveness, readiness.

Ready means Kafka answers, the archive directory takes a file, and the archiver holds
partitions of its group. The lag is what `bend archive status` calls `behind`: records the log
holds past the last segment on disk (so records read but still buffered count), measured on a
group-less connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

from bend.archive.archiver import Archiver
from bend.archive.status import partition_archives
from bend.kafka.offsets import OffsetReader
from bend.ops import process
from bend.ops.health import assignment_check, kafka_check, writable_dir_check
from bend.ops.metrics import set_archive_lag, set_consumer_lag, watch_archiver
from bend.settings import Settings

__all__ = ["publish_lag", "run_with_ops"]

log = structlog.get_logger(__name__)


class _Bounds(Protocol):
    async def bounds(self, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]: ...


async def publish_lag(archiver: Archiver, offsets: _Bounds) -> None:
    """Set `bend_archive_lag` (and the group's `bend_consumer_lag`) for each owned partition:
    the log's end minus the offset after its last segment (or the log's start, if later)."""
    owned = archiver.assignment()
    bounds = await offsets.bounds(archiver.topics) if owned else {}
    mine = {tp: b for tp, b in bounds.items() if tp in owned}
    rows = await asyncio.to_thread(partition_archives, archiver.store, mine)
    lags = {(r.topic, r.partition): r.behind for r in rows}
    set_archive_lag(lags)
    set_consumer_lag(archiver.group_id, lags)


async def _lag_loop(archiver: Archiver, settings: Settings) -> None:
    offsets: OffsetReader | None = None
    try:
        while True:
            await asyncio.sleep(settings.ops.lag_interval_s)
            try:
                if offsets is None:
                    offsets = OffsetReader(settings)
                    await offsets.start()
                await publish_lag(archiver, offsets)
            except Exception as err:  # no lag this round; the next one reconnects
                log.warning("archive_lag_unavailable", error=repr(err))
                if offsets is not None:
                    with contextlib.suppress(Exception):
                        await offsets.stop()
                    offsets = None
    finally:
        if offsets is not None:
            await offsets.stop()


async def run_with_ops(archiver: Archiver, settings: Settings) -> None:
    """Run the archiver with its ops server, heartbeat and lag measurement, until cancelled."""
    ops = settings.ops
    checks = {"kafka": kafka_check(settings.kafka, ops.check_timeout_s),
              "archive_dir": writable_dir_check(archiver.store.root, "BEND_ARCHIVE__DIR"),
              "assignment": assignment_check(archiver.group_id, archiver.assignment)}
    watch_archiver(lambda: (archiver.gaps, archiver.archived))
    try:
        await process.run_with_ops(archiver.run, ops, "archiver", checks=checks,
                                   beside=(_lag_loop(archiver, settings),))
    finally:
        watch_archiver(None)
