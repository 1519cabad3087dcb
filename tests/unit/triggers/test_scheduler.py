"""The schedule agent's decisions against a clock the test moves: what fires, once, and when."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bend.core.events import TriggerFired, TriggerRegistered, WorkflowPaused, WorkflowRegistered
from bend.core.triggers.schedules import dedupe_key
from bend.settings import KafkaSettings
from streams.triggers.book import Trigger, TriggerBook, WorkflowBook
from streams.triggers.firing import Firer
from streams.triggers.scheduler import Scheduler

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


class RecordingFirer(Firer):
    """Fires into a list instead of Kafka: the scheduler's choices are what is under test."""

    def __init__(self, book: TriggerBook, workflows: WorkflowBook) -> None:
        super().__init__(None, book, workflows, lambda: self.now)
        self.now = T0
        self.fired: list[datetime | None] = []

    async def fire(self, trigger: Trigger, key: str, run_input: Any,
                   due_at: datetime | None = None) -> str | None:
        if self.startable(trigger) is None:
            return None
        event = TriggerFired(event_id=str(uuid.uuid4()), workflow_id=trigger.workflow_id,
                             occurred_at=self.now, trigger_id=trigger.trigger_id,
                             trigger_type="schedule", dedupe_key=key, due_at=due_at)
        self.book.fired(event)
        self.fired.append(due_at)
        return "run"


def _setup(schedule: dict[str, Any]) -> tuple[TriggerBook, RecordingFirer, Scheduler]:
    book, workflows = TriggerBook(), WorkflowBook(KafkaSettings(bootstrap="unused:9092"), "unused")
    workflows.fold(WorkflowRegistered(event_id="w", workflow_id="wf", workflow_version=1,
                                      occurred_at=T0, name="wf", definition={"steps": []}))
    book.fold(TriggerRegistered(event_id="r", workflow_id="wf", occurred_at=T0, trigger_id="tr",
                                trigger_type="schedule",
                                definition={"type": "schedule", "schedule": schedule}), 0)
    firer = RecordingFirer(book, workflows)
    return book, firer, Scheduler(book, firer, owns=lambda partition: partition == 0)


async def test_an_interval_fires_each_due_time_once_however_often_it_ticks() -> None:
    _, firer, scheduler = _setup({"interval_seconds": 10})
    for second in range(31):
        firer.now = T0 + timedelta(seconds=second)
        await scheduler.tick()
        await scheduler.tick()
    assert firer.fired == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]


async def test_after_an_outage_catch_up_fires_the_latest_missed_up_to_the_cap() -> None:
    _, firer, scheduler = _setup({"interval_seconds": 60, "missed_policy": "catch_up",
                                  "max_catch_up": 2, "grace_seconds": 5})
    firer.now = T0 + timedelta(minutes=10, seconds=30)
    await scheduler.tick()
    await scheduler.tick()
    assert firer.fired == [T0 + timedelta(minutes=9), T0 + timedelta(minutes=10)]


async def test_after_an_outage_skip_fires_nothing_missed_but_the_next_on_time() -> None:
    _, firer, scheduler = _setup({"interval_seconds": 60, "grace_seconds": 5})
    firer.now = T0 + timedelta(minutes=10, seconds=30)
    await scheduler.tick()
    assert firer.fired == []
    firer.now = T0 + timedelta(minutes=11, seconds=1)
    await scheduler.tick()
    assert firer.fired == [T0 + timedelta(minutes=11)]


async def test_a_due_time_fired_by_another_scheduler_is_not_fired_again() -> None:
    book, firer, scheduler = _setup({"interval_seconds": 10})
    due = T0 + timedelta(seconds=10)
    book.fold(TriggerFired(event_id="x", workflow_id="wf", occurred_at=due, trigger_id="tr",
                           trigger_type="schedule", dedupe_key=dedupe_key("tr", due),
                           due_at=due))
    firer.now = due + timedelta(seconds=1)
    await scheduler.tick()
    assert firer.fired == []


async def test_a_schedule_on_a_partition_owned_elsewhere_does_not_fire() -> None:
    _, firer, _ = _setup({"interval_seconds": 10})
    other = Scheduler(firer.book, firer, owns=lambda partition: partition == 1)
    firer.now = T0 + timedelta(seconds=10)
    await other.tick()
    assert firer.fired == []


async def test_a_paused_workflow_skips_its_due_times_rather_than_queueing_them() -> None:
    _, firer, scheduler = _setup({"interval_seconds": 10})
    firer.workflows.fold(WorkflowPaused(event_id="p", workflow_id="wf", occurred_at=T0))
    firer.now = T0 + timedelta(seconds=10)
    await scheduler.tick()
    firer.workflows.paused.clear()
    await scheduler.tick()
    assert firer.fired == []
    firer.now = T0 + timedelta(seconds=20)
    await scheduler.tick()
    assert firer.fired == [T0 + timedelta(seconds=20)]


def test_a_repeated_firing_is_folded_once() -> None:
    book, _, _ = _setup({"interval_seconds": 10})
    due = T0 + timedelta(seconds=10)
    event = TriggerFired(event_id="x", workflow_id="wf", occurred_at=due, trigger_id="tr",
                         trigger_type="schedule", dedupe_key=dedupe_key("tr", due), due_at=due)
    assert book.fired(event) is True
    assert book.fired(event) is False
    assert book.triggers["tr"].state.fire_count == 1


class FailingFirer(RecordingFirer):
    """The first send fails, as when Kafka does not answer."""

    failures = 1

    async def fire(self, trigger: Trigger, key: str, run_input: Any,
                   due_at: datetime | None = None) -> str | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("kafka is down")
        return await super().fire(trigger, key, run_input, due_at)


async def test_a_due_time_whose_firing_failed_is_fired_on_the_next_tick() -> None:
    book, firer, _ = _setup({"interval_seconds": 10})
    failing = FailingFirer(book, firer.workflows)
    scheduler = Scheduler(book, failing, owns=lambda partition: partition == 0)
    failing.now = T0 + timedelta(seconds=10)
    with pytest.raises(ConnectionError):
        await scheduler.tick()
    await scheduler.tick()
    assert failing.fired == [T0 + timedelta(seconds=10)]
