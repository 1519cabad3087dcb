"""`replay_run`: a run's events folded with the pure `apply`, told as a timeline, checked
against the read model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bend.core.events import Event
from bend.core.state import RunState
from bend.replay.archive import read_archive
from bend.replay.compare import differences
from bend.replay.errors import NoEvents
from bend.replay.read import Recorded, run_events_of
from bend.replay.timeline import StepLine, fold_events, timeline
from bend.settings import Settings
from projections.db import connect, database_url
from projections.queries import live

__all__ = ["ReplayReport", "fold_report", "projection_of", "replay_run"]


@dataclass(slots=True)
class ReplayReport:
    """What replaying one run found."""

    run_id: str
    events: list[Event]
    state: RunState
    steps: list[StepLine]
    fold_seconds: float
    differences: list[str] = field(default_factory=list)
    checked: bool = False  # whether the projection was compared

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        s = self.state
        return {
            "run_id": self.run_id, "workflow_id": s.workflow_id, "status": s.status.value,
            "events": len(self.events), "fold_ms": round(self.fold_seconds * 1000, 3),
            "forked_from_run_id": s.forked_from_run_id, "fork_step_id": s.fork_step_id,
            "output": s.output, "error": None if s.error is None else s.error.message,
            "steps": [line.as_dict() for line in self.steps],
            "projection_checked": self.checked, "differences": self.differences,
        }


def fold_report(run_id: str, events: list[Event]) -> ReplayReport:
    """Fold the run's events (seq order) and build its timeline."""
    if not events:
        raise NoEvents(run_id, "the given events")
    started = time.perf_counter()
    state = fold_events(events)
    seconds = time.perf_counter() - started
    return ReplayReport(run_id, events, state, timeline(events), seconds)


async def projection_of(settings: Settings,
                        run_id: str,
                        ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int | None]:
    """The run's row, its step rows and the run-events partition the projector recorded."""
    conn = await connect(database_url(settings), settings.database.schema_name)
    try:
        return await live.run_rows(conn, run_id)
    finally:
        await conn.close()


async def replay_run(settings: Settings, run_id: str, *, archive: Path | None = None,
                     check_projection: bool = True, project: str | None = None) -> ReplayReport:
    """Read the run's events (Kafka, or `archive`), fold them, compare with the projection.

    With `project` (a caller's), a run of another project is unknown (NoEvents), as if it had
    no events: the API never tells one project what another's runs hold, or that they exist.
    """
    projection = await projection_of(settings, run_id) if check_projection else None
    if archive is not None:
        recorded: list[Recorded] = [r for r in read_archive(archive) if r.event.run_id == run_id]
        recorded.sort(key=lambda r: (r.event.seq, r.offset))
        where = str(archive)
    else:
        recorded = await run_events_of(settings, run_id, projection[2] if projection else None)
        where = "the run-events topic"
    if not recorded:
        raise NoEvents(run_id, where)
    report = fold_report(run_id, [r.event for r in recorded])
    if project is not None and report.state.project != project:
        raise NoEvents(run_id, where)
    if projection is not None:
        report.checked = True
        report.differences = differences(report.state, projection[0], projection[1])
    return report
