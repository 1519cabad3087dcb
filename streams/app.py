"""The Faust application: one app per role, raw byte topics, settings from `bend.settings`."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from bend.contracts.topics import topic_name
from bend.settings import Settings

__all__ = ["TopicNames", "create_app", "topic_names"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topic names every role uses, from the settings' prefix."""

    workflows: str
    run_events: str
    commands: str
    tasks: str
    triggers: str
    dead_letters: str
    circuits: str
    run_states: str


def topic_names(settings: Settings) -> TopicNames:
    """Topic names for the settings' prefix (their layout lives in bend.contracts.topics)."""
    return TopicNames(
        workflows=topic_name("workflows", settings),
        run_events=topic_name("runs", settings),
        commands=topic_name("commands", settings),
        tasks=topic_name("tasks", settings),
        triggers=topic_name("triggers", settings),
        dead_letters=topic_name("dead_letters", settings),
        circuits=topic_name("circuits", settings),
        run_states=topic_name("run_states", settings),
    )


def create_app(role: str, settings: Settings) -> faust.App:
    """A Faust app for `role` (its consumer group is `<prefix>-<role>`); topics are pre-created."""
    state_dir = settings.dev.state_dir / "faust"
    state_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"{settings.kafka.topic_prefix}-{role}",
        broker=f"kafka://{settings.kafka.bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(state_dir / role),
        topic_partitions=settings.kafka.default_partitions,
        topic_allow_declare=False,  # bend.contracts.admin creates and verifies every topic
        topic_disable_leader=True,
        web_enabled=False,
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move within seconds, not the 60 s default (local-kafka.md).
        broker_session_timeout=settings.workers.session_timeout_s,
        broker_heartbeat_interval=settings.workers.heartbeat_interval_s,
        broker_rebalance_timeout=settings.workers.session_timeout_s,
        broker_commit_interval=settings.workers.commit_interval_s,
        producer_acks=-1,
        producer_linger=0.0,
        # A decision's events are one record batch (written whole); let large ones fit.
        producer_max_batch_size=1_000_000,
    )
