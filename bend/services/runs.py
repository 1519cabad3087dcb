"""A run's use cases: read it, cancel it, fork it from a step, retry a step, replay it.

Every one is scoped to the caller's project: another project's run is unknown, as if it did not
exist (its id is never confirmed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bend.kafka.position import Position
from bend.replay.fork import fork_run as fork_from_log
from bend.replay.replay import ReplayReport
from bend.replay.replay import replay_run as replay_from_log
from bend.security.roles import Principal, require
from bend.services.deps import Deps
from bend.services.errors import RunFinished, UnknownRun, UnstorableInput
from bend.services.inputs import NUL_PROBLEM, nul_locations
from bend.triggering import records
from projections.queries import runs as queries

__all__ = ["Forked", "cancel_run", "fork_run", "get_run", "replay_run", "retry_step"]


@dataclass(frozen=True, slots=True)
class Forked:
    """The run a fork started: its id, its source, the step it ran again, the steps reused."""

    run_id: str
    forked_from_run_id: str
    fork_step_id: str
    reused: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "forked_from_run_id": self.forked_from_run_id,
                "fork_step_id": self.fork_step_id, "reused": list(self.reused)}


async def get_run(deps: Deps, principal: Principal, run_id: str) -> dict[str, Any]:
    """The run's row (from the read models) in the caller's project; UnknownRun otherwise."""
    require(principal, "runs:read")
    return await _row(deps, principal, run_id)


async def _row(deps: Deps, principal: Principal, run_id: str) -> dict[str, Any]:
    row = await queries.get_run(deps.pool, principal.project, run_id)
    if row is None:
        raise UnknownRun(run_id)
    return row


async def cancel_run(deps: Deps, principal: Principal, run_id: str, reason: str) -> Position:
    """Ask the orchestrator to cancel the run and its open steps; where the CancelRun went."""
    require(principal, "runs:cancel")
    run = await _row(deps, principal, run_id)
    if run["status"] in queries.FINISHED:
        raise RunFinished(run_id, run["status"])
    command = records.cancel_run(run, reason, principal, datetime.now(timezone.utc))
    return await deps.producer.send(command)


async def fork_run(deps: Deps, principal: Principal, run_id: str, from_step: str, *,
                   input: Any = None, overrides: Mapping[str, Any] | None = None) -> Forked:
    """Start a run reusing `run_id`'s outputs before `from_step`, with `input` (None: the
    source's) changed by `overrides`."""
    require(principal, "runs:replay")
    nuls = nul_locations(dict(overrides or {}), "set") + nul_locations(input, "input")
    if nuls:
        raise UnstorableInput(nuls, NUL_PROBLEM)
    cmd = await fork_from_log(deps.settings, run_id, from_step, input=input,
                              overrides=overrides or None, project=principal.project)
    return Forked(cmd.run_id or "", run_id, from_step, tuple(sorted(cmd.seed)))


async def retry_step(deps: Deps, principal: Principal, run_id: str, step_id: str) -> Forked:
    """Try a failed step again: fork the run from that step with the same input."""
    return await fork_run(deps, principal, run_id, step_id)


async def replay_run(deps: Deps, principal: Principal, run_id: str) -> ReplayReport:
    """The run's events folded with the engine's `apply`, and where the read models differ."""
    require(principal, "runs:read")
    return await replay_from_log(deps.settings, run_id, project=principal.project)
