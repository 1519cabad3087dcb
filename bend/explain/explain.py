"""`explain_run`: read the run's events and its surroundings, then reason with the pure core."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone

import asyncpg
import structlog

from bend.contracts.topics import topic_name
from bend.core.apply import fold
from bend.core.errors import BendError
from bend.core.explain import ExecutorLoad, LiveFacts, explain
from bend.core.kinds import Runner, kind_of
from bend.core.state import RunState
from bend.explain import observe
from bend.explain.model import Explanation, ReasonView
from bend.explain.observe import partition_of
from bend.replay.errors import NoEvents
from bend.replay.read import run_events_of
from bend.settings import Settings
from projections.db import create_pool, database_url

__all__ = ["explain_run", "partition_of"]

log = structlog.get_logger(__name__)


async def explain_run(settings: Settings, run_id: str, *, pool: asyncpg.Pool | None = None,
                      now: datetime | None = None) -> Explanation:
    """Why run `run_id` is where it is, from its events and live Kafka (and read-model) state.

    `pool` (the read model) gives the executors' in-flight steps for the concurrency check;
    without one, a pool is opened from the settings, and if that fails the check is skipped
    and said so in `notes`.
    """
    now = now or datetime.now(timezone.utc)
    commands = topic_name("commands", settings)
    prefix = settings.kafka.topic_prefix
    partitions = await observe.in_thread(observe.partition_count, settings, commands)
    partition = partition_of(run_id, partitions)
    notes: list[str] = []
    recorded = await run_events_of(settings, run_id, partition)
    events = [r.event for r in recorded]
    state: RunState | None = fold(events) if events else None
    orchestrator = await observe.in_thread(observe.group_facts, settings, "orchestrator",
                                           f"{prefix}-orchestrator", commands, partition)
    if state is None and not orchestrator.lag:
        raise NoEvents(run_id, f"partition {partition} of {topic_name('runs', settings)}, and "
                       "no command for it is pending")
    facts = LiveFacts(now=now, orchestrator=orchestrator,
                      dead_letters=await observe.dead_letters(
                          settings, topic_name("dead_letters", settings), run_id, partitions))
    if state is not None and not state.is_finished:
        facts = await _open_run_facts(settings, state, facts, pool, partitions, partition, notes)
    reasons = explain(state, facts, events)
    log.info("run_explained", run_id=run_id, kinds=[r.kind for r in reasons])
    return Explanation(
        run_id=run_id, status=state.status.value if state else "unknown",
        workflow_id=state.workflow_id if state else None, partition=partition,
        explained_at=now, reasons=[ReasonView.of(r) for r in reasons], notes=notes)


async def _open_run_facts(settings: Settings, state: RunState, facts: LiveFacts,
                          pool: asyncpg.Pool | None, partitions: int, partition: int,
                          notes: list[str]) -> LiveFacts:
    """The facts only an unfinished run needs: executors, circuits, children."""
    prefix = settings.kafka.topic_prefix
    executor = await observe.in_thread(observe.group_facts, settings, "executor",
                                       f"{prefix}-executor", topic_name("tasks", settings),
                                       partition)
    circuits = await observe.circuits(settings, topic_name("circuits", settings))
    children = {}
    for step in state.open_steps():
        child = step.input.get("child_run_id") if isinstance(step.input, dict) else None
        if (kind := kind_of(step.node_type)) is not None and kind.runner is Runner.CHILD_RUN \
                and child:
            found = await run_events_of(settings, child, partition_of(child, partitions))
            if found:
                folded = fold([r.event for r in found])
                assert folded is not None  # events fold to a state (None only from none)
                children[child] = folded.status.value
            else:
                children[child] = "not started"
    loads = await _loads(settings, pool, partition, partitions, notes)
    return replace(facts, executor=executor, circuits=circuits, children=children, loads=loads)


async def _loads(settings: Settings, pool: asyncpg.Pool | None, partition: int,
                 partitions: int, notes: list[str]) -> tuple[ExecutorLoad, ...]:
    limit = settings.workers.executor_concurrency
    own = pool is None
    try:
        if pool is None:
            pool = await asyncio.wait_for(create_pool(
                database_url(settings), settings.database.schema_name, min_size=1, max_size=1),
                timeout=10)
        try:
            return await observe.executor_loads(pool, partition, partitions, limit)
        finally:
            if own:
                assert pool is not None  # made above
                await pool.close()
    except (BendError, OSError, asyncpg.PostgresError, TimeoutError) as exc:
        notes.append(f"executor concurrency not checked: the read model is unreachable ({exc})")
        return ()
