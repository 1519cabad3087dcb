"""`rebuild_projections`: the read model rebuilt from the log's start beside the live one,
verified table by table, then switched in atomically while the API keeps serving.

Phases: rebuilding (the whole log into a fresh schema) -> catching_up (to what the live
projector applied meanwhile) -> verifying (under the live schema's batch lock: both at the same
offsets, compared table by table) -> switched (schemas renamed, or one projection's tables
moved, in that same transaction), or refused (differences, and they were not accepted), or
failed. The live projector needs no restart: its connection names the schema, so its next
batch writes to the switched-in tables, from offsets they already hold.

With a `RebuildRecorder`, the status lives in Postgres (`projection_rebuilds`), written by the
process running the rebuild: claimed at the start (refused while another runs anywhere), beaten
every `rebuild_heartbeat_s`, ended with the outcome. Any API replica reads it; a rebuild whose
heartbeat stopped for `rebuild_abandoned_after_s` is reported `abandoned`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.core.errors import BendError
from bend.settings import Settings
from projections import switch
from projections.db import check_schema, connect, database_url
from projections.errors import ProjectionError
from projections.queries import rebuilds as records
from projections.rebuild import catch_up, rebuild

__all__ = ["RebuildAbandoned", "RebuildInProgress", "RebuildRecorder", "RebuildRefused",
           "RebuildStatus", "abandoned_detail", "rebuild_projections"]

# Tables of the read-model schema that no projection writes: never compared, and carried over
# to the schema a full rebuild switches in.
NOT_PROJECTED = ("projection_rebuilds",)

log = structlog.get_logger(__name__)


class RebuildRefused(ProjectionError):
    """The rebuilt read model was not switched in."""

    code = "rebuild_refused"
    status = 409

    def __init__(self, rebuild_id: str, detail: str) -> None:
        super().__init__(f"rebuild {rebuild_id} was not switched in: {detail}")
        self.rebuild_id = rebuild_id


class RebuildInProgress(BendError):
    """Another rebuild is running (in this API process or another)."""

    code = "rebuild_in_progress"
    status = 409

    def __init__(self, rebuild_id: str, owner: str | None = None) -> None:
        where = f" in {owner}" if owner else ""
        super().__init__(f"rebuild {rebuild_id} is still running{where}; wait for it "
                         f"(GET /api/replay/projections/{rebuild_id})")
        self.rebuild_id = rebuild_id


class RebuildAbandoned(ProjectionError):
    """The rebuild stopped reporting progress and another process took over its record."""

    code = "rebuild_abandoned"
    status = 409

    def __init__(self, rebuild_id: str) -> None:
        super().__init__(f"rebuild {rebuild_id} was marked abandoned (no progress for too long) "
                         "and stopped before switching; start a new one")
        self.rebuild_id = rebuild_id


@dataclass(slots=True)
class RebuildStatus:
    """Where a rebuild is, what it read, and what the verification found."""

    rebuild_id: str
    live: str
    only: str | None = None
    # queued|rebuilding|catching_up|verifying|switched|refused|failed|abandoned
    phase: str = "queued"
    records: int = 0
    total: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    rebuild_seconds: float = 0.0
    switch_ms: float | None = None  # how long the projector was held for the verify and switch
    compared: bool = False
    note: str | None = None
    tables: list[str] = field(default_factory=list)
    differences: list[switch.TableDifference] = field(default_factory=list)
    retired: str | None = None
    error: str | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    finished_at: datetime | None = None
    lost: bool = False  # its record was marked abandoned by another process
    _t0: float = field(default_factory=time.perf_counter)

    @property
    def rebuilt(self) -> str:
        """The schema the rebuild fills."""
        return f"{self.live[:48]}_rb_{self.rebuild_id[:8]}"

    @property
    def per_second(self) -> float:
        """Records read per second while rebuilding."""
        seconds = self.rebuild_seconds or (time.perf_counter() - self._t0)
        return self.records / seconds if seconds > 0 else 0.0

    @property
    def done(self) -> bool:
        """Whether the rebuild has ended (switched, refused, failed or abandoned)."""
        return self.phase in records.TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "rebuild_id": self.rebuild_id, "phase": self.phase, "only": self.only,
            "live_schema": self.live, "rebuilt_schema": self.rebuilt,
            "retired_schema": self.retired, "records": self.records, "total": self.total,
            "progress": round(self.records / self.total, 4) if self.total else
            (1.0 if self.phase not in {"queued", "rebuilding"} else 0.0),
            "events_per_second": round(self.per_second, 1),
            "rebuild_seconds": round(self.rebuild_seconds, 3),
            "switch_ms": None if self.switch_ms is None else round(self.switch_ms, 1),
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "owner": self.owner, "compared": self.compared,
            "tables": self.tables, "note": self.note,
            "identical": self.compared and not self.differences,
            "differences": [d.as_dict() for d in self.differences], "error": self.error,
        }


def new_status(settings: Settings, only: str | None = None) -> RebuildStatus:
    """A queued rebuild of `settings`' read model (`only`: one projection's tables)."""
    if only is not None and only not in switch.PROJECTIONS:
        raise switch.UnknownProjection(only)
    return RebuildStatus(uuid.uuid4().hex[:12], check_schema(settings.database.schema_name),
                         only)


class RebuildRecorder:
    """Keeps a rebuild's status in `projection_rebuilds` (the live read-model schema of `pool`)."""

    def __init__(self, pool: Any, *, heartbeat_s: float, abandoned_after_s: float) -> None:
        self.pool = pool
        self.heartbeat_s = heartbeat_s
        self.abandoned_after_s = abandoned_after_s

    @classmethod
    def of(cls, pool: Any, settings: Settings) -> RebuildRecorder:
        """A recorder over `pool` with the settings' heartbeat and abandon timeouts."""
        return cls(pool, heartbeat_s=settings.api.rebuild_heartbeat_s,
                   abandoned_after_s=settings.api.rebuild_abandoned_after_s)

    async def claim(self, status: RebuildStatus) -> None:
        """Record `status` as the running rebuild (RebuildInProgress while another one runs
        anywhere; one silent for `abandoned_after_s` is marked abandoned first)."""
        async with self.pool.acquire() as conn:
            running = await records.claim(conn, status.as_dict(), self.abandoned_after_s)
        if running is not None:
            raise RebuildInProgress(running["rebuild_id"], running["owner"])

    async def write(self, status: RebuildStatus, *, finished: bool = False) -> bool:
        """Write the status (its heartbeat); False once another process marked it abandoned."""
        return await records.record(self.pool, status.as_dict(), finished=finished)

    async def read(self, rebuild_id: str) -> dict[str, Any] | None:
        """The rebuild's status as any replica reports it (None if unknown): `abandoned`, with
        what to do, when unfinished and silent for `abandoned_after_s`."""
        row = await records.get_rebuild(self.pool, rebuild_id, self.abandoned_after_s)
        if row is None:
            return None
        out = {**row["status"], "phase": row["phase"], "error": row["error"],
               "finished_at": None if row["finished_at"] is None else
               row["finished_at"].isoformat(),
               "heartbeat_at": row["heartbeat_at"].isoformat(), "owner": row["owner"]}
        if row["stale"] or row["phase"] == "abandoned":
            out["phase"], out["last_phase"] = "abandoned", row["status"]["phase"]
            out["abandoned"] = abandoned_detail(out, row["silent_s"], self.abandoned_after_s)
        return out

    async def _beat(self, status: RebuildStatus, worker: asyncio.Task[Any]) -> None:
        """Write the status every heartbeat and as soon as its phase changes; cancel `worker`
        once the record is taken over."""
        written, at = status.phase, time.monotonic()
        while True:
            await asyncio.sleep(min(self.heartbeat_s, 0.05))
            if status.phase == written and time.monotonic() - at < self.heartbeat_s:
                continue
            written, at = status.phase, time.monotonic()
            try:
                if not await self.write(status):
                    status.lost = True
                    worker.cancel()
                    return
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the rebuild
                log.warning("projections_rebuild_heartbeat_failed", rebuild_id=status.rebuild_id,
                            error=f"{type(exc).__name__}: {exc}")


def abandoned_detail(status: dict[str, Any], silent_s: float, after_s: float) -> str:
    """What an abandoned rebuild means and what to do about it."""
    return (f"the process running it ({status['owner']}) sent no progress for {silent_s:.0f} s "
            f"(more than {after_s:g} s) in phase {status['last_phase']!r}: it died or was "
            "stopped. If schema " f"{status['rebuilt_schema']} still exists, the read model was "
            f"not switched: drop it (DROP SCHEMA {status['rebuilt_schema']} CASCADE) and start "
            "a new rebuild (POST /api/replay/projections, which also ends this one); if it no "
            "longer exists, the switch happened before the process stopped.")


async def rebuild_projections(settings: Settings, status: RebuildStatus | None = None, *,
                              accept_differences: bool = False, drop_retired: bool = False,
                              settle_s: float = 10.0,
                              recorder: RebuildRecorder | None = None) -> RebuildStatus:
    """Rebuild, verify and switch; the final status (raises RebuildRefused when not switched).

    With `recorder`, the status (already claimed) is written every heartbeat and at the end.
    """
    status = status or new_status(settings)
    me = asyncio.current_task()
    beat = (asyncio.create_task(recorder._beat(status, me), name="rebuild-heartbeat")
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
                await asyncio.shield(recorder.write(status, finished=True))
            except Exception as exc:  # noqa: BLE001 - unrecorded, it reads as abandoned
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
        exists = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1 "
                                     "AND tablename = 'projection_offsets'", live)
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
                    await conn.execute(f"DROP SCHEMA IF EXISTS {live} CASCADE")
                    await conn.execute(f"ALTER SCHEMA {rebuilt} RENAME TO {live}")
                    retired = None  # type: ignore[assignment]
            else:
                await switch.switch_tables(conn, live, rebuilt, retired, status.tables)
        status.switch_ms = (time.perf_counter() - held) * 1000
        status.retired = retired
        if status.only is not None:  # the rest of the rebuilt schema served its purpose
            await conn.execute(f"DROP SCHEMA {rebuilt} CASCADE")
        if drop_retired and retired is not None:
            await conn.execute(f"DROP SCHEMA {retired} CASCADE")
            status.retired = None
    finally:
        await conn.close()
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
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{live}.{table}"):
            await conn.execute(f"DROP TABLE IF EXISTS {rebuilt}.{table}")
            await conn.execute(f"ALTER TABLE {live}.{table} SET SCHEMA {rebuilt}")
