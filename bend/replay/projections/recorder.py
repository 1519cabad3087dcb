"""`RebuildRecorder`: a rebuild's status kept in Postgres (`projection_rebuilds`), claimed at the
start (refused while another runs anywhere), beaten every `rebuild_heartbeat_s`, ended with the
outcome; any API replica reads it, and one silent too long reads as abandoned."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from bend.replay.projections.errors import RebuildInProgress
from bend.replay.projections.status import RebuildStatus, abandoned_detail
from bend.settings import Settings
from projections.queries import rebuilds as records

__all__ = ["RebuildRecorder"]

log = structlog.get_logger(__name__)


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
            out["abandoned"] = abandoned_detail(out, self.abandoned_after_s)
        return out

    async def beat(self, status: RebuildStatus, worker: asyncio.Task[Any]) -> None:
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
            except Exception as exc:
                log.warning("projections_rebuild_heartbeat_failed", rebuild_id=status.rebuild_id,
                            error=f"{type(exc).__name__}: {exc}")
