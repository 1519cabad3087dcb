"""A Kafka trigger remembers a bounded window of fired record keys, however many it fires."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bend.core.events import TriggerRegistered
from bend.triggering import events as trigger_events
from bend.triggering.events import firing
from streams.triggers.book import TriggerBook
from streams.triggers.recent import RecentKeys

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
ROW = {"trigger_id": "tr", "workflow_id": "wf", "tenant": "default", "project": "default",
       "trigger_type": "kafka"}


def _book(window: int) -> TriggerBook:
    book = TriggerBook(fired_window=window)
    book.fold(TriggerRegistered(event_id="r", workflow_id="wf", occurred_at=T0, trigger_id="tr",
                                trigger_type="kafka",
                                definition={"type": "kafka", "topic": "orders"}), 0)
    return book


def test_the_window_forgets_the_oldest_key_first() -> None:
    keys = RecentKeys(3)
    keys.update(["a", "b", "c"])
    keys.add("a")  # seen again: the newest now
    keys.add("d")
    assert ("b" in keys, "a" in keys, "c" in keys, "d" in keys) == (False, True, True, True)
    assert len(keys) == 3
    with pytest.raises(ValueError):
        RecentKeys(0)


def test_a_kafka_trigger_that_fires_a_million_keys_holds_only_its_window() -> None:
    book = _book(window=1000)
    trigger = book.triggers["tr"]
    for offset in range(20_000):
        book.fired(trigger_events.fired(ROW, f"run-{offset}", 1, f"orders/0/{offset}", {}, T0))
    assert len(trigger.fired_keys) == 1000
    assert "orders/0/19999" in trigger.fired_keys and "orders/0/18999" not in trigger.fired_keys


def test_a_forced_replay_key_holds_its_record_key_too() -> None:
    book = _book(window=10)
    book.fired(trigger_events.fired(ROW, "run", 1, "orders/0/7#r1", {}, T0))
    keys = book.triggers["tr"].fired_keys
    assert "orders/0/7" in keys and "orders/0/7#r1" in keys and len(keys) == 2


def test_a_key_fired_again_after_leaving_the_window_gets_the_same_run_id() -> None:
    # What makes the window safe: the orchestrator refuses the second StartRun for a run id.
    first = firing(ROW, "orders/0/5", 1, {"steps": []}, {"n": 1}, T0)
    again = firing(ROW, "orders/0/5", 2, {"steps": []}, {"n": 1}, T0.replace(year=2027))
    assert first[1].run_id == again[1].run_id == first[0].run_id
    assert firing(ROW, "orders/0/5#r1", 1, {"steps": []}, {}, T0)[1].run_id != first[1].run_id
