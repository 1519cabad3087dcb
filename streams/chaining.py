"""The chainer: starts the downstream workflows a run's definition names when the run ends.

It follows the run log in its consumer group (`<prefix>-chainer`). A run's `downstream` entries
and input come with its RunRequested (kept in memory while the run is open), else from its row
in the read model. Each downstream run has an id derived from the ended run's id and the entry's
place (bend.core.chaining), records the ended run as its trigger (`trigger_id
downstream:<run_id>`) and carries the workflow's latest active version whole, like every run.
An end read twice starts nothing twice: a run id already in the read model is not started again,
and the orchestrator refuses a second StartRun for a run it holds.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import structlog
from pydantic import ValidationError

from bend.contracts.codec import codec_for
from bend.core.chaining import Downstream, DownstreamStart, downstream_starts, trigger_of
from bend.core.commands import StartRun
from bend.core.errors import BendError
from bend.core.events import Event, RunRequested
from bend.kafka.producer import RecordProducer
from bend.settings import Settings
from projections.db import create_pool, database_url
from projections.migrate import migrate
from streams.follow import follow_run_log

__all__ = ["Chainer", "downstream_of", "main"]

log = structlog.get_logger(__name__)

_KEPT_RUNS = 50_000


def downstream_of(definition: Any) -> tuple[Downstream, ...]:
    """The downstream entries of a definition (JSON data); none if it names none."""
    raw = definition.get("downstream") if isinstance(definition, dict) else None
    if not raw:
        return ()
    try:
        return tuple(Downstream.model_validate(d) for d in raw)
    except ValidationError as exc:
        log.warning("downstream_unreadable", error=str(exc)[:300])
        return ()


class Chainer:
    """Starts downstream runs of the settings' runs; `await run()` until cancelled."""

    def __init__(self, settings: Settings, *, group_id: str | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.kafka.topic_prefix}-chainer"
        self.read = 0  # run-log records handled since start
        self.started = 0  # downstream runs started since start
        self.ready = asyncio.Event()
        self._decode = codec_for(settings).decode
        self._runs: OrderedDict[str, tuple[tuple[Downstream, ...], Any]] = OrderedDict()
        self._pool: Any = None  # an asyncpg Pool
        self._producer: RecordProducer | None = None

    async def run(self) -> None:
        """Follow the run log and start downstream runs, until cancelled."""
        schema = self.settings.database.schema_name
        self._pool = pool = await create_pool(database_url(self.settings), schema,
                                              min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, schema)
            async with RecordProducer(self.settings) as producer:
                self._producer = producer
                await follow_run_log(self.settings, self.group_id, self.handle, self.ready)
        finally:
            await pool.close()

    async def handle(self, raw: bytes) -> None:
        """Start what one run-log record's end owes."""
        self.read += 1
        try:
            event = self._decode(raw)
        except BendError as exc:
            log.warning("chainer_undecodable", error=exc.message)
            return
        if not isinstance(event, Event) or not event.run_id:
            return
        if isinstance(event, RunRequested):
            self._keep(event.run_id, downstream_of(event.definition), event.input)
            return
        if event.event_type not in ("RunCompleted", "RunFailed", "RunCancelled"):
            return
        downstream, run_input = await self._downstream(event.run_id)
        for start in downstream_starts(event, run_input, downstream):
            await self._start(event, start)
        self._runs.pop(event.run_id, None)

    def _keep(self, run_id: str, downstream: tuple[Downstream, ...], run_input: Any) -> None:
        self._runs[run_id] = (downstream, run_input)
        while len(self._runs) > _KEPT_RUNS:
            self._runs.popitem(last=False)

    async def _downstream(self, run_id: str) -> tuple[tuple[Downstream, ...], Any]:
        kept = self._runs.get(run_id)
        if kept is not None:
            return kept
        row = await self._pool.fetchrow("SELECT definition, input FROM runs WHERE run_id = $1",
                                        run_id)
        return (downstream_of(row["definition"]), row["input"]) if row else ((), None)

    async def _start(self, ended: Event, start: DownstreamStart) -> None:
        bound = {"run_id": ended.run_id, "downstream_run_id": start.run_id,
                 "workflow": start.workflow}
        if start.error is not None:
            log.warning("downstream_input_failed", error=start.error, **bound)
            return
        if await self._pool.fetchval("SELECT 1 FROM runs WHERE run_id = $1", start.run_id):
            return  # started already: this end was read again
        wf = await self._pool.fetchrow(
            "SELECT w.workflow_id, w.tenant, v.version, v.definition FROM workflows w "
            "JOIN workflow_versions v ON v.workflow_id = w.workflow_id "
            "AND v.version = w.latest_version WHERE w.project = $1 "
            "AND (w.workflow_id = $2 OR w.name = $2) AND w.status = 'active' "
            "ORDER BY w.created_at DESC LIMIT 1", ended.project, start.workflow)
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
    """`python -m streams.chaining run`: the chainer, until stopped."""
    from bend.log import configure_logging
    from bend.settings import get_settings

    if argv[:1] != ["run"]:
        print("usage: python -m streams.chaining run", file=sys.stderr)
        return 2
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    try:
        asyncio.run(Chainer(settings).run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
