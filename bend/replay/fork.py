"""Forking a recorded run from a step: the StartRun that reuses every earlier step's output."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from bend.core.commands import StartRun
from bend.core.definitions import definition_json
from bend.core.draft import Rejected
from bend.core.errors import BendError
from bend.core.fork import fork_seed, start_fork
from bend.core.state import RunState
from bend.kafka.producer import RecordProducer
from bend.replay.errors import NoEvents
from bend.replay.read import run_events_of
from bend.replay.timeline import fold_events
from bend.settings import Settings

__all__ = ["ForkRefused", "fork_command", "fork_run", "parse_assignment"]


class ForkRefused(BendError):
    """The fork would not start: the core refuses its StartRun."""

    status = 409

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"cannot fork run {run_id}: {reason}")
        self.run_id = run_id


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as JSON when it parses (else kept as text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{text!r} is not key=value")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def fork_command(source: RunState, from_step: str, now: datetime, *,
                 input: Any = None, overrides: Mapping[str, Any] | None = None,
                 run_id: str | None = None, definition: Any = None,
                 backtest_id: str | None = None, replayed: Any = None) -> StartRun:
    """The StartRun of a fork of `source` from `from_step`, checked against the core.

    A backtest's fork gives `definition` (the source's with `from_step` changed), its
    `backtest_id`, and `replayed` (bend.core.fork.replayed_outputs; None: run them live).
    """
    if source.definition is None:
        raise ForkRefused(source.run_id, "its definition never compiled, so it has no steps")
    seed = fork_seed(source, from_step)  # UnknownStep names the steps there are
    new_input = source.input if input is None else input
    if overrides:
        if not isinstance(new_input, dict):
            raise ForkRefused(source.run_id, "--set needs an input that is a JSON object")
        new_input = {**new_input, **overrides}
    run_id = run_id or str(uuid.uuid4())
    cmd = StartRun(
        event_id=str(uuid.uuid4()), run_id=run_id, workflow_id=source.workflow_id,
        workflow_version=source.workflow_version, occurred_at=now, correlation_id=run_id,
        tenant=source.tenant, project=source.project,
        definition=definition_json(source.definition) if definition is None else definition,
        input=new_input, forked_from_run_id=source.run_id, fork_step_id=from_step, seed=seed,
        backtest_id=backtest_id, replayed=replayed,
    )
    decision = start_fork(cmd, seed, now)  # refuse here what the orchestrator would refuse
    if isinstance(decision, Rejected):
        raise ForkRefused(source.run_id, decision.reason)
    return cmd


async def fork_run(settings: Settings, run_id: str, from_step: str, *, input: Any = None,
                   overrides: Mapping[str, Any] | None = None,
                   partition: int | None = None, project: str | None = None) -> StartRun:
    """Read `run_id`'s events, fold them, and send the fork's StartRun; the command sent.

    With `project` (a caller's), a run of another project is unknown (NoEvents): a fork starts
    in its source's project, so forking another project's run would act in that project.
    """
    recorded = await run_events_of(settings, run_id, partition)
    if not recorded:
        raise NoEvents(run_id, "the run-events topic")
    source = fold_events([r.event for r in recorded])
    if project is not None and source.project != project:
        raise NoEvents(run_id, "the run-events topic")
    cmd = fork_command(source, from_step, datetime.now(timezone.utc), input=input,
                       overrides=overrides)
    async with RecordProducer(settings) as producer:
        await producer.send(cmd)
    return cmd
