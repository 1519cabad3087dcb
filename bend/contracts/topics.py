"""Topics as code: every topic Bend uses, its layout, and which topic and key a record takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bend.contracts.errors import MissingKey, UnknownEventType
from bend.core.commands import Command
from bend.core.events import (
    CircuitStateChanged, DeadLettered, DeadLetterRedriven, Envelope, Event, TriggerFailed,
    TriggerFired,
    TriggerRegistered, TriggerRemoved, TriggerReplayRequested, TriggerUpdated,
)
from bend.settings import Settings

__all__ = [
    "AGENT_TOKENS_KEPT_MS", "FINISHED_RUNS_KEPT_MS", "FOREVER", "TOPIC_KINDS", "TopicSpec",
    "key_for", "topic_for", "topic_name", "topic_specs",
]

FOREVER = -1  # retention.ms of logs that are the source of truth
_DAY_MS = 24 * 60 * 60 * 1000
# How long the run-states topic keeps the ids of finished runs (a FinishedRuns record per
# snapshot round, deleted by its writer after this): the durable window in which a command, a
# StartRun too, for a finished run is known to be for a finished run. A new owner reads every
# round's record still kept (3,600 an hour at one round a second), whatever the runs finished.
FINISHED_RUNS_KEPT_MS = 60 * 60 * 1000
# How long a tombstone stays (delete.retention.ms): a new owner reads the topic well within it.
_TOMBSTONES_KEPT_MS = 15 * 60 * 1000
# How long streamed model text stays: it is only worth watching while the step runs.
AGENT_TOKENS_KEPT_MS = 60 * 60 * 1000

# A record class's `topic_kind` -> the topic's suffix.
TOPIC_KINDS: Mapping[str, str] = MappingProxyType({
    "workflows": "workflows",
    "runs": "run-events",
    "commands": "commands",
    "tasks": "tasks",
    "triggers": "triggers",
    "dead_letters": "dead-letters",
    "timers": "timers",
    "circuits": "circuits",
    "run_states": "run-states",
    # Not a contract: a best-effort side channel of an agent step's model text as it streams
    # (streams/executors/tokens.py writes JSON to it; the API's /tokens route reads it).
    "agent_tokens": "agent-tokens",
})


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic's name and layout, as `bend.contracts.admin` creates and verifies it."""

    name: str
    partitions: int
    key: str  # what the record key is, for people
    retention_ms: int
    cleanup_policy: str = "delete"
    replication_factor: int = 1
    min_insync_replicas: int = 1
    configs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def all_configs(self) -> dict[str, str]:
        """The topic configs to create it with: retention, cleanup policy, min.insync.replicas,
        then the extras."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms),
                "min.insync.replicas": str(self.min_insync_replicas), **self.configs}


def topic_name(kind: str, settings: Settings) -> str:
    """The full name of a topic kind (`runs` -> `bend.run-events`)."""
    try:
        return f"{settings.kafka.topic_prefix}.{TOPIC_KINDS[kind]}"
    except KeyError:
        raise ValueError(f"unknown topic kind {kind!r}; choose from {', '.join(TOPIC_KINDS)}") \
            from None


def topic_specs(settings: Settings) -> tuple[TopicSpec, ...]:
    """Every topic Bend needs, for the settings' prefix, partitions, replicas and min ISR."""
    k = settings.kafka

    def spec(kind: str, key: str, retention_ms: int, policy: str = "delete") -> TopicSpec:
        return TopicSpec(topic_name(kind, settings), k.default_partitions, key, retention_ms,
                         policy, k.replication_factor, k.min_insync_replicas)

    return (
        spec("workflows", "workflow_id", FOREVER),
        spec("runs", "run_id (the authoritative run log)", k.run_log_retention_ms),
        spec("commands", "run_id", 7 * _DAY_MS),
        spec("tasks", "run_id (steps for executors)", 7 * _DAY_MS),
        spec("triggers", "trigger_id", FOREVER),
        spec("dead_letters", "the source record's key", 30 * _DAY_MS),
        spec("timers", "timer_id (pending durable timers)", FOREVER, "compact"),
        spec("circuits", "target (circuit breaker state changes)", 7 * _DAY_MS),
        TopicSpec(topic_name("run_states", settings), k.default_partitions,
                  "run_id (open runs' snapshots; ~finished/<p>/... and ~round/<p> markers)",
                  FOREVER, "compact", k.replication_factor, k.min_insync_replicas,
                  MappingProxyType({
                      "delete.retention.ms": str(_TOMBSTONES_KEPT_MS),
                      # Roll and clean often: a new owner reads the whole topic.
                      "segment.ms": str(5 * 60 * 1000),
                      "min.cleanable.dirty.ratio": "0.1",
                      "max.message.bytes": str(8 * 1024 * 1024),
                  })),
        spec("agent_tokens", "run_id (streamed model text; a side channel, no contract)",
             AGENT_TOKENS_KEPT_MS),
    )


def topic_for(record: Envelope | type[Envelope], settings: Settings) -> str:
    """The topic a record (or record class) is produced to, from its `topic_kind`."""
    cls = record if isinstance(record, type) else type(record)
    if not issubclass(cls, (Event, Command)):
        raise UnknownEventType(cls.__name__)
    return topic_name(cls.topic_kind, settings)


def key_for(record: Envelope) -> bytes:
    """The record key that keeps a record in order with its peers (same partition)."""
    match record:
        case (TriggerFired() | TriggerRegistered() | TriggerUpdated() | TriggerRemoved()
              | TriggerFailed() | TriggerReplayRequested()):
            return record.trigger_id.encode()
        case DeadLettered():
            return record.key or b""
        case DeadLetterRedriven():
            # Beside its DeadLettered (same key, same partition), so every reader, a rebuild
            # included, marks the dead letter after it has it.
            if record.source_key is not None:
                return record.source_key
            return record.dead_letter_id.encode()
        case CircuitStateChanged():
            return record.target.encode()
        case Event() | Command() if record.topic_kind == "workflows":
            return record.workflow_id.encode()
        case Event() | Command() if record.run_id is not None:
            return record.run_id.encode()
        case Event() | Command():
            raise MissingKey(type(record).__name__, record.event_id, "run_id")
    raise UnknownEventType(type(record).__name__)
