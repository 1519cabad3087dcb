"""The registered workflow versions, read from the workflows topic, for child runs.

A subworkflow step names another workflow (and maybe a version); its child `StartRun` must
carry that version's definition, because every run is self-contained. The catalog folds the
workflows topic from its start and keeps following it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Protocol

import structlog

from bend.contracts.codec import decode
from bend.core.commands import StartRun
from bend.core.errors import BendError
from bend.core.events import WorkflowDeleted, WorkflowRegistered, WorkflowVersioned
from bend.kafka import clients
from bend.kafka.fromstart import seek_to_start
from bend.kafka.metadata import partitions_of
from bend.settings import KafkaSettings

__all__ = ["Catalog", "WorkflowCatalog"]

log = structlog.get_logger(__name__)


class Catalog(Protocol):
    """Definitions for StartRuns that only name their workflow (a fake in unit tests)."""

    async def complete(self, cmd: StartRun) -> StartRun:
        """`cmd` with its workflow's definition filled in, when it is known."""
        ...

    async def follow(self) -> None:
        """Keep the catalog current (runs as a task of the worker)."""
        ...


class WorkflowCatalog:
    """workflow_id → version → definition, caught up before the first lookup."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self.versions: dict[str, dict[int, Any]] = {}
        self._caught_up = asyncio.Event()

    def fold(self, event: object) -> None:
        """Take one workflow event into the catalog."""
        match event:
            case WorkflowRegistered() | WorkflowVersioned():
                self.versions.setdefault(event.workflow_id, {})[event.workflow_version or 1] = \
                    event.definition
            case WorkflowDeleted():
                self.versions.pop(event.workflow_id, None)

    def resolve(self, workflow_id: str, version: int = 0) -> tuple[int, Any] | None:
        """(version, definition) of `workflow_id` at `version` (0: the latest), or None."""
        versions = self.versions.get(workflow_id)
        if not versions:
            return None
        chosen = version or max(versions)
        return (chosen, versions[chosen]) if chosen in versions else None

    async def complete(self, cmd: StartRun) -> StartRun:
        """A child StartRun with the named workflow's definition filled in (when it has none)."""
        if cmd.definition is not None:
            return cmd
        await asyncio.wait_for(self._caught_up.wait(), timeout=60)
        found = self.resolve(cmd.workflow_id, cmd.workflow_version)
        if found is None:
            log.warning("child_workflow_unknown", run_id=cmd.run_id,
                        workflow_id=cmd.workflow_id, version=cmd.workflow_version)
            return cmd  # the child run fails with InvalidDefinition, and so does the step
        version, definition = found
        return replace(cmd, workflow_version=version, definition=definition)

    async def follow(self) -> None:
        """Read the workflows topic from its start, then keep following it."""
        consumer = clients.consumer(self._kafka, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = await partitions_of(consumer, [self._topic])
            _, ends = await seek_to_start(consumer, tps)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                for records in batch.values():
                    for record in records:
                        try:
                            self.fold(decode(record.value))
                        except BendError as exc:
                            log.error("undecodable_workflow_event", offset=record.offset,
                                      error=str(exc))
                if not self._caught_up.is_set() and all(
                        [await consumer.position(tp) >= ends[tp] for tp in tps]):
                    self._caught_up.set()
                    log.info("workflow_catalog_ready",
                             workflows=len(self.versions))
        finally:
            await consumer.stop()
