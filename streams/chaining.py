"""The chainer: starts the downstream workflows a run's definition names when the run ends.

It follows the run log in its consumer group (`<prefix>-chainer`). A run's `downstream` entries
and input come with its RunRequested (kept in memory while the run is open), else from its row
in the read model; a backtest's runs (RunRequested.backtest_id) start nothing. Each downstream
run has an id derived from the ended run's id and the entry's place (bend.core.chaining),
records the ended run as its trigger (`trigger_id downstream:<run_id>`) and carries the
workflow's latest active version whole, like every run. An end read twice starts nothing
twice: a run id already in the read model is not started again, and the orchestrator refuses a
second StartRun for a run it holds.
"""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import structlog

from bend.core.chaining import Downstream, DownstreamStart, downstream_starts, trigger_of
from bend.core.commands import StartRun
from bend.core.events import Event, RunRequested
from bend.kafka.producer import RecordProducer
from bend.settings import Settings
from projections.queries import runs as run_queries
from projections.queries import workflows as workflow_queries
from streams.follow import RUN_ENDS, RunLogFollower, RunMemo, entries_of, serve

__all__ = ["Chainer", "downstream_of", "main"]

log = structlog.get_logger(__name__)


def downstream_of(definition: Any) -> tuple[Downstream, ...]:
    """The downstream entries of a definition (JSON data); none if it names none."""
    return entries_of(definition, "downstream", Downstream)


class Chainer(RunLogFollower):
    """Starts downstream runs of the settings' runs; `await run()` until cancelled."""

    role = "chainer"

    def __init__(self, settings: Settings, *, group_id: str | None = None) -> None:
        super().__init__(settings, group_id=group_id)
        self.started = 0  # downstream runs started since start
        self._runs: RunMemo[tuple[tuple[Downstream, ...], Any]] = RunMemo()
        self._producer: RecordProducer | None = None

    async def open(self) -> None:
        self._producer = RecordProducer(self.settings)
        await self._producer.start()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def on_event(self, event: Event) -> None:
        """Start what one run's end owes."""
        assert event.run_id
        if isinstance(event, RunRequested):  # a backtest's runs chain nothing
            self._runs.keep(event.run_id, (() if event.backtest_id
                                           else downstream_of(event.definition), event.input))
            return
        if event.event_type not in RUN_ENDS:
            return
        downstream, run_input = await self._downstream(event.run_id)
        for start in downstream_starts(event, run_input, downstream):
            await self._start(event, start)
        self._runs.drop(event.run_id)

    async def _downstream(self, run_id: str) -> tuple[tuple[Downstream, ...], Any]:
        kept = self._runs.get(run_id)
        if kept is not None:
            return kept
        row = await run_queries.started_with(self.pool, run_id)
        if row is None or row["backtest_id"]:
            return (), None
        return downstream_of(row["definition"]), row["input"]

    async def _start(self, ended: Event, start: DownstreamStart) -> None:
        bound = {"run_id": ended.run_id, "downstream_run_id": start.run_id,
                 "workflow": start.workflow}
        if start.error is not None:
            log.warning("downstream_input_failed", error=start.error, **bound)
            return
        if await run_queries.exists(self.pool, start.run_id):
            return  # started already: this end was read again
        wf = await workflow_queries.active_latest(self.pool, ended.project, start.workflow)
        if wf is None:
            log.warning("downstream_workflow_unknown", reason="no active workflow of the run's "
                        "project has that id or name", **bound)
            return
        assert self._producer is not None
        cmd = StartRun(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{start.run_id}:start")),
            run_id=start.run_id, workflow_id=wf["workflow_id"],
            workflow_version=wf["version"], occurred_at=datetime.now(timezone.utc),
            causation_id=ended.event_id, correlation_id=ended.correlation_id or ended.run_id,
            tenant=wf["tenant"], project=ended.project, definition=wf["definition"],
            input=start.input, trigger_id=trigger_of(ended.run_id or ""),
            idempotency_key=f"downstream:{ended.run_id}:{start.index}")
        await self._producer.send(cmd)
        self.started += 1
        log.info("downstream_started", workflow_id=wf["workflow_id"], **bound)


def main(argv: list[str]) -> int:
    """`python -m streams.chaining run`: the chainer, with its ops server, until stopped."""
    return serve(Chainer, "streams.chaining", argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
