"""The Faust application: one app per role, raw byte topics, settings from `bend.settings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from bend.contracts.topics import topic_name
from bend.kafka import clients
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
    agent_tokens: str


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
        agent_tokens=topic_name("agent_tokens", settings),
    )


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with idempotence on (Faust turns it on only for exactly-once).

    acks=all alone does not keep a record from being written twice: when a broker dies after
    appending a batch but before answering, the producer sends the batch again to the new
    leader, which appends it again. On a 3-broker cluster that put a StepSucceeded (same
    event id and seq) twice in the run log (tests/integration/test_cluster.py). With
    idempotence the broker drops the resent batch by its producer id and sequence number.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class _Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, making IdempotentProducers."""

    Producer = IdempotentProducer


def create_app(role: str, settings: Settings) -> faust.App:
    """A Faust app for `role` (its consumer group is `<prefix>-<role>`); topics are pre-created."""
    state_dir = settings.dev.state_dir / "faust"
    state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.kafka.topic_prefix}-{role}",
        **clients.faust_options(settings.kafka),  # bootstrap, TLS and SASL
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
    app.transport = _Transport(app.conf.broker_consumer, app)  # its producer: idempotent
    return app
