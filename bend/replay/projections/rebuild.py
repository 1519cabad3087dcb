"""`rebuild_projections`: the four phases (rebuilding, catching_up, verifying, switched), with
the status written by a `RebuildRecorder` when one is given. The schema statements it runs are
projections.queries.schemas'."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.core.errors import BendError
from bend.replay.projections.errors import RebuildAbandoned, RebuildRefused
from bend.replay.projections.recorder import RebuildRecorder
from bend.replay.projections.status import RebuildStatus, new_status
from bend.settings import Settings
from projections import switch
from projections.db import check_schema, connect, database_url
from projections.queries import schemas
from projections.rebuild import catch_up, rebuild

__all__ = ["NOT_PROJECTED", "rebuild_projections"]

# Tables of the read-model schema that no projection writes: never compared, and carried over
# to the schema a full rebuild switches in.
NOT_PROJECTED = ("projection_rebuilds", "notification_deliveries")

log = structlog.get_logger(__name__)


async def rebuild_projections(settings: Settings, status: RebuildStatus | None = None, *,
                              accept_differences: bool = False, drop_retired: bool = False,
                              settle_s: float = 10.0,
                              recorder: RebuildRecorder | None = None) -> RebuildStatus:
    """Rebuild, verify and switch; the final status (raises RebuildRefused when not switched).

    With `recorder`, the status (already claimed) is written every heartbeat and at the end.
    """
    status = status or new_status(settings)
    me = asyncio.current_task()
    beat = (asyncio.create_task(recorder.beat(status, me), name="rebuild-heartbeat")
            if recorder is not None and me is not None else None)
    try:
        await _run(settings, status, accept_differences, drop_retired, settle_s)
    except asyncio.CancelledError:
        if status.lost and me is not None:
            me.uncancel()
            status.phase, status.error = "abandoned", "marked abandoned by another process"
            raise RebuildAbandoned(status.rebuild_id) from None
        status.phase, status.error = "failed", "cancelled: the process running it stopped it"
        raise
    except RebuildRefused as exc:
        status.phase, status.error = "refused", exc.message
        raise
    except BendError as exc:
        status.phase, status.error = "failed", exc.message
        raise
    except Exception as exc:
        status.phase, status.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        status.finished_at = datetime.now(timezone.utc)
        if beat is not None:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        if recorder is not None and not status.lost:
            try:
                await asyncio.wait_for(asyncio.shield(recorder.write(status, finished=True)),
                                       10.0)
            except Exception as exc:
                log.warning("projections_rebuild_unrecorded", rebuild_id=status.rebuild_id,
                            error=f"{type(exc).__name__}: {exc}")
        log.info("projections_rebuild_ended", **{k: v for k, v in status.as_dict().items()
                                                  if k not in {"differences", "tables"}})
    return status


async def _run(settings: Settings, status: RebuildStatus, accept_differences: bool,
               drop_retired: bool, settle_s: float) -> None:
    live, rebuilt = status.live, check_schema(status.rebuilt)
    status.phase = "rebuilding"

    def progress(records: int, total: int) -> None:
        status.records, status.total = records, total

    report = await rebuild(settings, rebuilt, progress=progress)
    status.records, status.rebuild_seconds = report.records, report.seconds
    status.total = max(status.total, report.records)
    status.phase = "catching_up"
    conn = await connect(database_url(settings), live)
    try:
        exists = await schemas.has_offsets(conn, live)
        if exists:
            await _settle(settings, conn, live, rebuilt, settle_s)
        status.phase = "verifying"
        retired = check_schema(f"{live[:48]}_old_{status.rebuild_id[:8]}")
        held = time.perf_counter()
        async with conn.transaction():
            if exists:
                await switch.hold_batches(conn, live)
                await _verify(settings, conn, status)
                if status.only is not None and not status.compared:
                    raise RebuildRefused(status.rebuild_id, f"{status.note}; switching one "
                                         "projection needs both at the same offsets")
                if status.differences and not accept_differences:
                    raise RebuildRefused(
                        status.rebuild_id,
                        f"{len(status.differences)} table(s) differ "
                        f"({', '.join(d.table for d in status.differences)}); the rebuilt "
                        f"schema {rebuilt} is kept for inspection: accept the differences "
                        "to switch anyway (--accept-differences)")
            if status.only is None:
                await _carry_not_projected(conn, live, rebuilt)
                if exists:
                    await switch.switch_schema(conn, live, rebuilt, retired)
                else:
                    await schemas.drop_schema(conn, live, if_exists=True)
                    await schemas.rename_schema(conn, rebuilt, live)
                    retired = None  # type: ignore[assignment]
            else:
                await switch.switch_tables(conn, live, rebuilt, retired, status.tables)
        status.switch_ms = (time.perf_counter() - held) * 1000
        status.retired = retired
        if status.only is not None:  # the rest of the rebuilt schema served its purpose
            await schemas.drop_schema(conn, rebuilt)
        if drop_retired and retired is not None:
            await schemas.drop_schema(conn, retired)
            status.retired = None
    finally:
        try:  # a lock wait cut short may leave it busy: do not let closing hold the stop up
            await asyncio.wait_for(conn.close(), 5.0)
        except TimeoutError:
            conn.terminate()
    status.phase = "switched"


async def _settle(settings: Settings, conn: Any, live: str, rebuilt: str,
                  settle_s: float) -> None:
    """Catch the rebuilt schema up with the live one, and give a running projector `settle_s`
    to reach what the rebuild read (so both can be compared at the same offsets)."""
    deadline = time.monotonic() + settle_s
    while True:
        live_at = await switch.offsets(conn, live)
        await catch_up(settings, rebuilt, live_at)
        rebuilt_at = await switch.offsets(conn, rebuilt)
        if all(live_at.get(tp, 0) >= n for tp, n in rebuilt_at.items()):
            return
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.2)


async def _verify(settings: Settings, conn: Any, status: RebuildStatus) -> None:
    """Under the batch lock: bring the rebuilt schema to the live offsets and compare."""
    live, rebuilt = status.live, status.rebuilt
    live_at = await switch.offsets(conn, live)
    await catch_up(settings, rebuilt, live_at)
    rebuilt_at = await switch.offsets(conn, rebuilt)
    status.tables = [t for t in await switch.tables_of(conn, rebuilt, status.only)
                     if t not in NOT_PROJECTED]
    ahead = {tp: (live_at.get(tp, 0), n) for tp, n in rebuilt_at.items()
             if n != live_at.get(tp, 0)}
    if ahead:
        (topic, partition), (at, n) = sorted(ahead.items())[0]
        status.note = (f"the live read model is behind the rebuilt one ({len(ahead)} "
                       f"partition(s), e.g. {topic}[{partition}] at {at} vs {n}): is its "
                       "projector running? not compared")
        return
    status.differences = await switch.compare(conn, live, rebuilt, status.tables)
    status.compared = True


async def _carry_not_projected(conn: Any, live: str, rebuilt: str) -> None:
    """Inside the switch's transaction: the tables no projection writes (the rebuilds' own
    records, among them the running one's) move to the schema switched in."""
    for table in NOT_PROJECTED:
        await schemas.move_table(conn, table, live, rebuilt)
