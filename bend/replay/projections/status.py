"""A rebuild's status: its phase, what it read, what the verification found (`as_dict` is what
the API and the records in `projection_rebuilds` show)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bend.settings import Settings
from projections import switch
from projections.db import check_schema
from projections.queries import rebuilds as records

__all__ = ["RebuildStatus", "abandoned_detail", "new_status"]


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


def abandoned_detail(status: dict[str, Any], after_s: float) -> str:
    """What an abandoned rebuild means and what to do about it. It names the last heartbeat,
    not the silence so far, so every read of the same record says the same."""
    return (f"the process running it ({status['owner']}) sent no progress since "
            f"{status['heartbeat_at']} (more than {after_s:g} s) in phase "
            f"{status['last_phase']!r}: it died or was stopped. If schema "
            f"{status['rebuilt_schema']} still exists, the read model was not switched: drop it "
            f"(DROP SCHEMA {status['rebuilt_schema']} CASCADE) and start a new rebuild (POST "
            "/api/replay/projections, which also ends this one); if it no longer exists, the "
            "switch happened before the process stopped.")
