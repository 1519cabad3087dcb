"""Create Bend's missing topics and verify existing ones; a mismatch is an error, never ignored."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from bend.contracts.errors import KafkaAdminFailed, TopicMismatch
from bend.contracts.topics import TopicSpec, topic_specs
from bend.kafka import clients
from bend.settings import Settings

__all__ = ["TopicReport", "ensure_topics"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TopicReport:
    """What `ensure_topics` did: topics it created, and all it verified."""

    created: tuple[str, ...]
    verified: tuple[str, ...]


def ensure_topics(settings: Settings, specs: Sequence[TopicSpec] | None = None,
                  timeout_s: float = 30.0) -> TopicReport:
    """Create the missing topics (idempotent), then verify every one; TopicMismatch lists all
    differences in partition count, replicas (too few), cleanup.policy, retention.ms,
    min.insync.replicas and extra configs."""
    specs = topic_specs(settings) if specs is None else tuple(specs)
    bootstrap = settings.kafka.bootstrap
    clients.refuse_early(settings.kafka)  # a wrong password or CA: say so, not "no metadata"
    admin = clients.confluent_admin(settings.kafka, {"client.id": settings.kafka.client_id})
    deadline = time.monotonic() + timeout_s
    created: list[str] = []
    while True:
        existing = _topics(admin, bootstrap, timeout_s)
        done, lost = _create(admin, [s for s in specs if s.name not in existing], bootstrap,
                             timeout_s)
        created += done
        if not lost:
            break
        # With several bootstrap servers, librdkafka retires the bootstrap connections once it
        # learns the brokers, failing a request sent on one (_DESTROY_BROKER): ask again.
        if time.monotonic() >= deadline:
            raise KafkaAdminFailed(bootstrap, "; ".join(lost))
        time.sleep(0.2)
    differences = _verify(admin, specs, bootstrap, timeout_s)
    if differences:
        raise TopicMismatch(differences)
    log.info("topics_ready", created=list(created), verified=len(specs))
    return TopicReport(tuple(created), tuple(s.name for s in specs))


def _topics(admin: AdminClient, bootstrap: str, timeout_s: float) -> dict[str, int]:
    """Existing topic -> partition count."""
    return {name: len(t.partitions) for name, t in _metadata(admin, bootstrap, timeout_s).items()}


def _replicas(admin: AdminClient, bootstrap: str, timeout_s: float) -> dict[str, int]:
    """Existing topic -> its fewest replicas of any partition (assigned, live or not)."""
    return {name: min((len(p.replicas) for p in t.partitions.values()), default=0)
            for name, t in _metadata(admin, bootstrap, timeout_s).items()}


def _metadata(admin: AdminClient, bootstrap: str, timeout_s: float) -> dict[str, Any]:
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as err:
        raise KafkaAdminFailed(bootstrap, f"no metadata in {timeout_s:g} s ({err})") from err
    return {name: t for name, t in metadata.topics.items() if t.error is None}


# A request lost with its connection, or sent to a node no longer the controller: ask again.
_TRANSIENT = {KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT,  # noqa: SLF001
              KafkaError.NOT_CONTROLLER}


def _create(admin: AdminClient, missing: list[TopicSpec], bootstrap: str,
            timeout_s: float) -> tuple[list[str], list[str]]:
    """Create `missing`; (names created, why each topic whose request was lost failed)."""
    if not missing:
        return [], []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication_factor, config=s.all_configs())
         for s in missing],
        operation_timeout=timeout_s, request_timeout=timeout_s,
    )
    created, lost = [], []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as err:
            code = err.args[0].code()
            if code in _TRANSIENT:
                lost.append(f"creating {name}: {err}")
            # Another process created it between our look and our request: verified below.
            elif code != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaAdminFailed(bootstrap, f"creating {name}: {err}") from err
    return created, lost


def _verify(admin: AdminClient, specs: Sequence[TopicSpec], bootstrap: str,
            timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    partitions = _topics(admin, bootstrap, timeout_s)
    while any(s.name not in partitions for s in specs) and time.monotonic() < deadline:
        time.sleep(0.2)  # a topic just created shows in metadata a moment later
        partitions = _topics(admin, bootstrap, timeout_s)
    replicas = _replicas(admin, bootstrap, timeout_s)
    while any(replicas.get(s.name) == 0 for s in specs if s.name in partitions) \
            and time.monotonic() < deadline:
        time.sleep(0.2)  # a new topic's partitions show their replicas a moment after it
        replicas = _replicas(admin, bootstrap, timeout_s)
    configs = _configs(admin, [s.name for s in specs if s.name in partitions], bootstrap,
                       timeout_s)
    out = []
    for spec in specs:
        if spec.name not in partitions:
            out.append(f"{spec.name} does not exist after creating it; check the broker's log")
            continue
        have = partitions[spec.name]
        if have != spec.partitions:
            out.append(
                f"{spec.name} has {have} partitions, Bend needs {spec.partitions} (records of "
                "one key must land on the same partition number in every topic): recreate it "
                f"empty with {spec.partitions}, or set BEND_KAFKA__DEFAULT_PARTITIONS={have} "
                "if every Bend topic has that many"
            )
        # No replica at all is metadata not yet complete (a partition has at least one), not a
        # topic with too few: only a count the cluster reported is held against the setting.
        if 0 < replicas.get(spec.name, 0) < spec.replication_factor:
            out.append(
                f"{spec.name} has {replicas.get(spec.name, 0)} replicas, Bend needs "
                f"{spec.replication_factor} (BEND_KAFKA__REPLICATION_FACTOR): reassign its "
                "partitions with kafka-reassign-partitions.sh, or recreate it"
            )
        for key, want in spec.all_configs().items():
            got = configs[spec.name].get(key)
            if not _same(key, got, want):
                out.append(
                    f"{spec.name} has {key}={got}, Bend needs {key}={want}: run kafka-configs.sh "
                    f"--bootstrap-server {bootstrap} --alter --entity-type topics --entity-name "
                    f"{spec.name} --add-config {key}={want}"
                )
    return out


def _configs(admin: AdminClient, names: list[str], bootstrap: str,
             timeout_s: float) -> dict[str, dict[str, str | None]]:
    """Each topic's configs. On a cluster, a topic just created may be unknown for a moment
    to the broker asked (metadata reaches brokers one by one): asked again until timeout_s."""
    deadline = time.monotonic() + timeout_s
    out: dict[str, dict[str, str | None]] = {}
    pending = list(names)
    while pending:
        futures = admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, name) for name in pending],
            request_timeout=timeout_s,
        )
        pending = []
        for resource, future in futures.items():
            try:
                entries = future.result()
            except KafkaException as err:
                unknown = err.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
                if unknown and time.monotonic() < deadline:
                    pending.append(resource.name)
                    continue
                raise KafkaAdminFailed(bootstrap, f"describing {resource.name}: {err}") from err
            out[resource.name] = {k: e.value for k, e in entries.items()}
        if pending:
            time.sleep(0.2)
    return out


def _same(key: str, got: str | None, want: str) -> bool:
    if got is None:
        return False
    if key == "cleanup.policy":  # "compact,delete" == "delete,compact"
        return set(got.replace(" ", "").split(",")) == set(want.split(","))
    return got == want
