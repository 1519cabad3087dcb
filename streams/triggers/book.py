"""Every trigger and its firings, folded from the triggers topic (all partitions), and which
workflows are paused, from the workflows topic: the small global view each trigger agent reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.kafka import clients
from bend.kafka.fromstart import seek_to_start
from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.core.events import (
    TriggerFailed, TriggerFired, TriggerRegistered, TriggerRemoved, TriggerReplayRequested,
    TriggerUpdated, WorkflowActivated, WorkflowDeleted, WorkflowPaused,
)
from bend.core.triggers.errors import InvalidTrigger
from bend.core.triggers import KafkaTrigger, ScheduleTrigger, TriggerState, apply, parse_trigger
from bend.kafka.metadata import partitions_of
from bend.settings import KafkaSettings
from streams.catalog import WorkflowCatalog
from streams.triggers.recent import DEFAULT_WINDOW, RecentKeys

__all__ = ["Trigger", "TriggerBook", "WorkflowBook", "follow_all", "partitions"]

log = structlog.get_logger(__name__)


@dataclass
class Trigger:
    """One registered trigger: its definition, owner, enabled flag and folded state."""

    trigger_id: str
    trigger_type: str
    workflow_id: str
    tenant: str
    project: str
    definition: Any
    enabled: bool
    since: datetime  # when the current definition took effect (registered or updated)
    state: TriggerState
    partition: int = -1  # of the triggers topic: its owner in the `triggers` group fires it
    last_fired: TriggerFired | None = None
    replays: list[TriggerReplayRequested] = field(default_factory=list)  # Kafka, in order
    # Kafka: the record keys fired lately (bounded; streams.triggers.recent says why enough)
    fired_keys: RecentKeys = field(default_factory=RecentKeys)

    @property
    def replay(self) -> TriggerReplayRequested | None:
        """The latest replay asked for (Kafka triggers), or None."""
        return self.replays[-1] if self.replays else None

    def row(self) -> dict[str, Any]:
        """The trigger as `bend.triggering.events.fired` takes it (a `triggers` row)."""
        return {"trigger_id": self.trigger_id, "trigger_type": self.trigger_type,
                "workflow_id": self.workflow_id, "tenant": self.tenant, "project": self.project}


@dataclass
class TriggerBook:
    """trigger_id → Trigger, folded from TriggerRegistered/Updated/Removed/Fired records."""

    triggers: dict[str, Trigger] = field(default_factory=dict)
    fired_window: int = DEFAULT_WINDOW  # record keys each Kafka trigger remembers

    def fold(self, event: object, partition: int = -1) -> None:
        """Take one triggers-topic event into the book; a duplicate firing changes nothing."""
        match event:
            case TriggerRegistered():
                parsed = self._parse(event.trigger_id, event.definition)
                if parsed is not None:
                    self.triggers[event.trigger_id] = Trigger(
                        event.trigger_id, event.trigger_type, event.workflow_id, event.tenant,
                        event.project, parsed, True, event.occurred_at,
                        TriggerState(trigger_id=event.trigger_id), partition,
                        fired_keys=RecentKeys(self.fired_window))
            case TriggerUpdated():
                found = self.triggers.get(event.trigger_id)
                parsed = self._parse(event.trigger_id, event.definition)
                if found is not None and parsed is not None:
                    found.definition, found.enabled = parsed, event.enabled
                    found.since = event.occurred_at
            case TriggerRemoved():
                self.triggers.pop(event.trigger_id, None)
            case TriggerFired():
                self.fired(event)
            case TriggerFailed():
                found = self.triggers.get(event.trigger_id)
                if found is not None:
                    found.state = apply(found.state, event)
            case TriggerReplayRequested():
                found = self.triggers.get(event.trigger_id)
                if found is not None and all(r.replay_id != event.replay_id
                                             for r in found.replays):
                    found.replays.append(event)

    def fired(self, event: TriggerFired) -> bool:
        """Fold one firing; False when its dedupe key was seen already (a duplicate)."""
        found = self.triggers.get(event.trigger_id)
        if found is None:
            return False
        schedule = (found.definition.schedule
                    if isinstance(found.definition, ScheduleTrigger) else None)
        before = found.state
        found.state = apply(before, event, schedule)
        if found.state is before:
            return False
        found.last_fired = event
        if isinstance(found.definition, KafkaTrigger):  # a forced replay's key and its record's
            found.fired_keys.update((event.dedupe_key.partition("#")[0], event.dedupe_key))
        return True

    def of_type(self, kind: type) -> list[Trigger]:
        """The enabled triggers whose definition is a `kind`."""
        return [t for t in self.triggers.values()
                if t.enabled and isinstance(t.definition, kind)]

    @staticmethod
    def _parse(trigger_id: str, definition: Any) -> Any:
        try:
            return parse_trigger(definition)
        except InvalidTrigger as exc:
            log.error("trigger_definition_invalid", trigger_id=trigger_id, error=str(exc))
            return None


class WorkflowBook(WorkflowCatalog):
    """The workflow catalog plus each workflow's status: paused workflows start no runs."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        super().__init__(kafka, topic)
        self.paused: set[str] = set()

    def fold(self, event: object) -> None:
        """Take one workflow event into the catalog and the paused set."""
        super().fold(event)
        match event:
            case WorkflowPaused():
                self.paused.add(event.workflow_id)
            case WorkflowActivated() | WorkflowDeleted():
                self.paused.discard(event.workflow_id)

    @property
    def ready(self) -> asyncio.Event:
        """Set once the workflows topic was read to its end."""
        return self._caught_up


async def partitions(consumer: AIOKafkaConsumer, topic: str,
                     wait_s: float = 10.0) -> list[TopicPartition]:
    """The topic's partitions; metadata can lag a fresh consumer, so ask again for `wait_s`."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        found = await partitions_of(consumer, [topic])
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def follow_all(kafka: KafkaSettings, topic: str, book: TriggerBook,
                     caught_up: asyncio.Event) -> None:
    """Fold `topic` (every partition) into `book` from its start; set `caught_up` at its end."""
    consumer = clients.consumer(kafka, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = await partitions(consumer, topic, wait_s=60.0)
        if not tps:
            raise RuntimeError(f"topic {topic} has no partitions; create the topics with "
                               "`bend dev up`")
        begins, ends = await seek_to_start(consumer, tps)
        # Partitions still to read to their end (counted by the records, not by position()).
        behind = {tp.partition: ends[tp] for tp in tps if ends[tp] > begins[tp]}
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batch.items():
                for record in records:
                    try:
                        book.fold(decode(record.value), record.partition)
                    except BendError as exc:
                        log.error("undecodable_trigger_event", partition=record.partition,
                                  offset=record.offset, error=str(exc))
                if records and records[-1].offset + 1 >= behind.get(tp.partition, 0):
                    behind.pop(tp.partition, None)
            if not behind and not caught_up.is_set():
                caught_up.set()
                log.info("trigger_book_ready", triggers=len(book.triggers))
    finally:
        await consumer.stop()
