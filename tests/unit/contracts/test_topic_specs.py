"""Topics as code: names and layouts from the settings, each record's topic and key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from bend.contracts.codec import RECORD_TYPES
from bend.contracts.errors import MissingKey, UnknownEventType
from bend.contracts.topics import (
    FOREVER, TOPIC_KINDS, TopicSpec, key_for, topic_for, topic_specs,
)
from bend.core.commands import CancelRun, StartRun
from bend.core.events import (
    DeadLettered, Envelope, RunStarted, StepScheduled, TriggerFired, WorkflowRegistered,
)
from bend.settings import KafkaSettings, Settings

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = Settings(kafka=KafkaSettings(topic_prefix="acme", default_partitions=6,
                                        replication_factor=3, min_insync_replicas=2))
DAY_MS = 86_400_000


def test_every_topic_takes_the_prefix_partitions_and_replication_from_the_settings() -> None:
    specs = {s.name: s for s in topic_specs(SETTINGS)}
    assert list(specs) == ["acme.workflows", "acme.run-events", "acme.commands", "acme.tasks",
                           "acme.triggers", "acme.dead-letters", "acme.timers",
                           "acme.circuits", "acme.run-states",
                           "acme.agent-tokens"]
    assert {(s.partitions, s.replication_factor) for s in specs.values()} == {(6, 3)}
    assert {s.all_configs()["min.insync.replicas"] for s in specs.values()} == {"2"}


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="BEND_KAFKA__MIN_INSYNC_REPLICAS"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_min_insync_replicas_is_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEND_KAFKA__REPLICATION_FACTOR", "3")
    monkeypatch.setenv("BEND_KAFKA__MIN_INSYNC_REPLICAS", "2")
    specs = topic_specs(Settings())
    assert {(s.replication_factor, s.min_insync_replicas) for s in specs} == {(3, 2)}


@pytest.mark.parametrize("name, retention_ms, policy", [
    ("acme.workflows", FOREVER, "delete"),
    ("acme.run-events", FOREVER, "delete"),
    ("acme.commands", 7 * DAY_MS, "delete"),
    ("acme.tasks", 7 * DAY_MS, "delete"),
    ("acme.triggers", FOREVER, "delete"),
    ("acme.dead-letters", 30 * DAY_MS, "delete"),
    ("acme.timers", FOREVER, "compact"),
    ("acme.circuits", 7 * DAY_MS, "delete"),
    ("acme.run-states", FOREVER, "compact"),
    ("acme.agent-tokens", 60 * 60 * 1000, "delete"),
])
def test_each_topic_keeps_its_records_as_long_as_bend_needs(
    name: str, retention_ms: int, policy: str
) -> None:
    spec = {s.name: s for s in topic_specs(SETTINGS)}[name]
    assert (spec.retention_ms, spec.cleanup_policy) == (retention_ms, policy)
    assert spec.all_configs()["retention.ms"] == str(retention_ms)


def test_every_record_class_maps_to_a_topic_bend_creates() -> None:
    names = {s.name for s in topic_specs(SETTINGS)}
    for cls in RECORD_TYPES.values():
        assert cls.topic_kind in TOPIC_KINDS
        assert topic_for(cls, SETTINGS) in names


def test_records_go_to_the_topic_of_their_kind() -> None:
    assert topic_for(RunStarted, SETTINGS) == "acme.run-events"
    assert topic_for(WorkflowRegistered, SETTINGS) == "acme.workflows"
    assert topic_for(CancelRun, SETTINGS) == "acme.commands"
    assert topic_for(TriggerFired, SETTINGS) == "acme.triggers"
    assert topic_for(DeadLettered, SETTINGS) == "acme.dead-letters"


def test_run_events_and_commands_are_keyed_by_run_id() -> None:
    step = StepScheduled(event_id="e", run_id="run-9", workflow_id="wf", occurred_at=NOW,
                         step_id="s", node_type="llm")
    assert key_for(step) == b"run-9"
    assert key_for(StartRun(event_id="c", run_id="run-9", workflow_id="wf", occurred_at=NOW)) \
        == b"run-9"


def test_workflow_events_are_keyed_by_workflow_id_and_triggers_by_trigger_id() -> None:
    assert key_for(WorkflowRegistered(event_id="e", workflow_id="wf-1", occurred_at=NOW,
                                      name="n")) == b"wf-1"
    fired = TriggerFired(event_id="e", workflow_id="wf-1", occurred_at=NOW, trigger_id="t-3",
                         trigger_type="schedule", dedupe_key="k")
    assert key_for(fired) == b"t-3"


def test_dead_letters_keep_the_source_records_key() -> None:
    letter = DeadLettered(event_id="e", workflow_id="", occurred_at=NOW, source_topic="x",
                          source_partition=0, source_offset=1, error_type="E", reason="r",
                          key=b"run-1")
    assert key_for(letter) == b"run-1"


def test_a_run_event_without_run_id_has_no_key_and_says_so() -> None:
    with pytest.raises(MissingKey, match="RunStarted e has no run_id"):
        key_for(RunStarted(event_id="e", workflow_id="wf", occurred_at=NOW))


def test_a_class_outside_the_catalogue_has_no_topic() -> None:
    @dataclass(frozen=True, kw_only=True, slots=True)
    class Loose(Envelope):
        """Neither event nor command."""

    with pytest.raises(UnknownEventType):
        topic_for(Loose, SETTINGS)


def test_a_redrive_mark_is_keyed_as_its_dead_letter_so_readers_see_them_in_order() -> None:
    from datetime import datetime, timezone

    from bend.contracts.topics import key_for
    from bend.core.events import DeadLettered, DeadLetterRedriven

    at = datetime(2026, 12, 7, tzinfo=timezone.utc)
    letter = DeadLettered(event_id="d1", workflow_id="", occurred_at=at, source_topic="t",
                          source_partition=0, source_offset=1, error_type="E", reason="r",
                          key=b"run-7", payload=b"x")
    mark = DeadLetterRedriven(event_id="m1", workflow_id="", occurred_at=at,
                              dead_letter_id="d1", target_topic="t", target_partition=0,
                              target_offset=2, actor="a", source_key=b"run-7")
    assert key_for(mark) == key_for(letter) == b"run-7"
    keyless = DeadLettered(event_id="d2", workflow_id="", occurred_at=at, source_topic="t",
                           source_partition=0, source_offset=1, error_type="E", reason="r",
                           key=None, payload=b"x")
    assert key_for(keyless) == b"" == key_for(DeadLetterRedriven(
        event_id="m2", workflow_id="", occurred_at=at, dead_letter_id="d2", target_topic="t",
        target_partition=0, target_offset=2, actor="a", source_key=b""))
    old = DeadLetterRedriven(event_id="m3", workflow_id="", occurred_at=at,
                             dead_letter_id="d3", target_topic="t", target_partition=0,
                             target_offset=2, actor="a")
    assert key_for(old) == b"d3"  # written before source_key: keyed by the dead letter's id


def test_the_run_logs_retention_is_a_setting_and_forever_by_default() -> None:
    def runs(settings: Settings) -> TopicSpec:
        return next(s for s in topic_specs(settings) if s.name.endswith(".run-events"))

    assert runs(Settings()).retention_ms == FOREVER
    week = 7 * 24 * 3600 * 1000
    kept = runs(Settings(kafka=KafkaSettings(run_log_retention_ms=week)))
    assert kept.all_configs()["retention.ms"] == str(week)
