"""The system at a glance (operators and admins): workers by role from their consumer groups,
the read models' lag, open circuits, dead letters waiting, Kafka and Postgres, versions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from confluent_kafka import KafkaException

from bend import __version__
from bend.contracts.topics import topic_name
from bend.core.errors import BendError
from bend.core.explain import CircuitFacts
from bend.deadletters import DeadLetterFilter
from bend.explain import observe
from bend.kafka import clients
from bend.kafka.offsets import OffsetReader
from bend.ops.health import CheckResult, run_checks
from bend.security.roles import Principal, allows, require
from bend.services import dead_letters
from bend.services.deps import Deps
from projections.lag import ProjectionLag, describe, projection_lag

__all__ = ["DEAD_LETTERS_COUNTED", "Member", "System", "WorkerGroup", "system"]

_TIMEOUT_S = 5.0
DEAD_LETTERS_COUNTED = 1000  # past this the page says "1000+"


@dataclass(frozen=True, slots=True)
class Member:
    """One process of a group: who it is and the partitions it reads."""

    client_id: str
    host: str
    partitions: tuple[str, ...]  # `topic/partition`


@dataclass(frozen=True, slots=True)
class WorkerGroup:
    """A role's consumer group: its state, members, partitions and lag (None: unknown)."""

    role: str
    group: str
    state: str
    members: tuple[Member, ...]
    partitions: int
    lag: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class System:
    """What the system page shows."""

    workers: tuple[WorkerGroup, ...]
    health: dict[str, CheckResult]
    projector_lag: ProjectionLag | None
    projector_lag_text: str
    open_circuits: tuple[CircuitFacts, ...]
    dead_letters_waiting: int | None
    api_version: str = __version__
    engine_version: str = __version__
    checked_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def _describe_groups(deps: Deps) -> list[tuple[str, Any]]:
    """(group, description) of every group of this installation's prefix (blocking)."""
    admin = clients.confluent_admin(deps.settings.kafka,
                                    {"client.id": f"{deps.settings.kafka.client_id}-system"})
    prefix = f"{deps.settings.kafka.topic_prefix}-"
    listed = admin.list_consumer_groups(request_timeout=_TIMEOUT_S).result(timeout=_TIMEOUT_S)
    names = sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))
    if not names:
        return []
    described = admin.describe_consumer_groups(names, request_timeout=_TIMEOUT_S)
    return [(name, described[name].result(timeout=_TIMEOUT_S)) for name in names]


async def _committed(deps: Deps, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets (aiokafka: librdkafka's call can abort the process)."""
    admin = clients.admin(deps.settings.kafka,
                          client_id=f"{deps.settings.kafka.client_id}-system",
                          request_timeout_ms=int(_TIMEOUT_S * 1000))
    await admin.start()
    try:
        listed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in listed.items()
            if isinstance(tp, TopicPartition) and meta.offset >= 0}


async def _group(deps: Deps, offsets: OffsetReader, name: str, desc: Any) -> WorkerGroup:
    prefix = f"{deps.settings.kafka.topic_prefix}-"
    members = tuple(Member(m.client_id, m.host, tuple(
        f"{a.topic}/{a.partition}" for a in (m.assignment.topic_partitions
                                              if m.assignment else ())))
        for m in desc.members)
    state = getattr(desc.state, "name", str(desc.state)).lower()
    assigned = sum(len(m.partitions) for m in members)
    try:
        committed = await asyncio.wait_for(_committed(deps, name), _TIMEOUT_S * 2)
        ends = await offsets.bounds(sorted({t for t, _ in committed}))
        lag: int | None = sum(max(ends[tp][1] - off, 0) for tp, off in committed.items()
                              if tp in ends)
        error = None
    except (TimeoutError, KafkaError, BendError) as err:
        lag, error = None, f"no offsets ({err!r})"
    return WorkerGroup(name.removeprefix(prefix), name, state, members, assigned, lag, error)


async def _workers(deps: Deps, offsets: OffsetReader) -> tuple[tuple[WorkerGroup, ...],
                                                               str | None]:
    try:
        groups = await asyncio.wait_for(asyncio.to_thread(_describe_groups, deps),
                                        _TIMEOUT_S * 2)
    except (TimeoutError, KafkaException) as err:
        return (), f"consumer groups unreadable ({err!r})"
    return tuple([await _group(deps, offsets, n, d) for n, d in groups]), None


async def system(deps: Deps, principal: Principal, offsets: OffsetReader,
                 projected: Sequence[str]) -> tuple[System, str | None]:
    """The system page's facts and, if the workers could not be read, why."""
    require(principal, "system:read")
    lag: ProjectionLag | None = None

    async def postgres() -> str:
        await deps.pool.fetchval("SELECT 1")
        return "answers"

    async def kafka() -> str:
        nonlocal lag
        lag = await projection_lag(deps.pool, offsets, projected)
        return f"answers at {deps.settings.kafka.bootstrap}"

    health = await run_checks({"postgres": postgres, "kafka": kafka}, _TIMEOUT_S)
    workers, workers_error = await _workers(deps, offsets)
    try:
        circuits = await asyncio.wait_for(
            observe.circuits(deps.settings, topic_name("circuits", deps.settings)), _TIMEOUT_S)
        open_ = tuple(c for c in circuits.values() if c.state != "closed")
    except (TimeoutError, BendError, KafkaError):
        open_ = ()
    waiting = [] if not allows(principal.role, "dead_letters:read") else \
        await dead_letters.list_letters(deps, principal, DeadLetterFilter(redriven=False),
                                              limit=DEAD_LETTERS_COUNTED, before=None)
    return System(workers=workers, health=dict(health.checks), projector_lag=lag,
                  projector_lag_text=describe(lag) if lag is not None else "unknown",
                  open_circuits=open_, dead_letters_waiting=len(waiting)), workers_error
