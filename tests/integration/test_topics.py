"""`ensure_topics` on the real local Kafka: idempotent creation, and every mismatch reported."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from bend.contracts.admin import ensure_topics
from bend.contracts.errors import KafkaAdminFailed, TopicMismatch
from bend.contracts.topics import topic_specs
from bend.settings import KafkaSettings, Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture()
def settings(kafka_bootstrap: str) -> Iterator[Settings]:
    """Settings with a topic prefix of this test's own; its topics are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield Settings(kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=prefix,
                                       default_partitions=3))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{prefix}.")]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap})


def _precreate(settings: Settings, name: str, partitions: int, **configs: str) -> None:
    admin = _admin(settings)  # held: futures fail once their client is collected
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=configs)], operation_timeout=30)
    for future in futures.values():
        future.result()


def test_topics_are_created_once_and_then_only_verified(settings: Settings) -> None:
    first = ensure_topics(settings)
    names = [s.name for s in topic_specs(settings)]
    assert sorted(first.created) == sorted(names)
    second = ensure_topics(settings)
    assert second.created == () and sorted(second.verified) == sorted(names)
    admin = _admin(settings)
    metadata = admin.list_topics(timeout=10)
    assert {len(metadata.topics[n].partitions) for n in names} == {3}
    timers = f"{settings.kafka.topic_prefix}.timers"
    configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, timers)])
    (entries,) = [f.result() for f in configs.values()]
    assert entries["cleanup.policy"].value == "compact"
    assert entries["retention.ms"].value == "-1"


def test_a_topic_with_another_partition_count_is_reported(settings: Settings) -> None:
    run_events = f"{settings.kafka.topic_prefix}.run-events"
    _precreate(settings, run_events, 2, **{"retention.ms": "-1"})
    with pytest.raises(TopicMismatch) as err:
        ensure_topics(settings)
    assert err.value.differences == (
        f"{run_events} has 2 partitions, Bend needs 3 (records of one key must land on the "
        "same partition number in every topic): recreate it empty with 3, or set "
        "BEND_KAFKA__DEFAULT_PARTITIONS=2 if every Bend topic has that many",
    )


def test_a_wrong_cleanup_policy_and_retention_are_each_reported(settings: Settings) -> None:
    timers = f"{settings.kafka.topic_prefix}.timers"
    commands = f"{settings.kafka.topic_prefix}.commands"
    _precreate(settings, timers, 3, **{"cleanup.policy": "delete", "retention.ms": "-1"})
    _precreate(settings, commands, 3, **{"retention.ms": "1000"})
    with pytest.raises(TopicMismatch) as err:
        ensure_topics(settings)
    found = err.value.differences
    assert len(found) == 2, found
    assert found[0].startswith(f"{commands} has retention.ms=1000, Bend needs "
                               "retention.ms=604800000: run kafka-configs.sh")
    assert found[1].startswith(f"{timers} has cleanup.policy=delete, Bend needs "
                               "cleanup.policy=compact")
    assert "--add-config cleanup.policy=compact" in found[1]


def test_too_many_replicas_or_insync_replicas_for_the_topics_are_reported(
        settings: Settings) -> None:
    # One broker: a topic cannot have 2 replicas, so asking for them is reported per topic.
    commands = f"{settings.kafka.topic_prefix}.commands"
    _precreate(settings, commands, 3, **{"retention.ms": "604800000",
                                         "min.insync.replicas": "1"})
    kafka = settings.kafka.model_copy(update={"replication_factor": 2, "min_insync_replicas": 2})
    wanting = settings.model_copy(update={"kafka": kafka})
    with pytest.raises(TopicMismatch) as err:
        ensure_topics(wanting, specs=[s for s in topic_specs(wanting) if s.name == commands])
    assert err.value.differences[0].startswith(f"{commands} has 1 replicas, Bend needs 2")
    assert err.value.differences[1].startswith(f"{commands} has min.insync.replicas=1, Bend "
                                               "needs min.insync.replicas=2")


def test_an_unreachable_kafka_is_a_typed_error_saying_how_to_start_it() -> None:
    settings = Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:9"))
    with pytest.raises(KafkaAdminFailed, match="bend dev up"):
        ensure_topics(settings, timeout_s=2)
