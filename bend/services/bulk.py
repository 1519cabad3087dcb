"""Bulk starts: one run per input of a workflow in one request, bounded in runs and in the bytes
of commands it produces, sent in input order a few at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bend.core.errors import BendError
from bend.kafka.position import Position
from bend.security.roles import Principal, require
from bend.services.deps import Deps
from bend.services.inputs import check_inputs
from bend.services.workflows import pinned
from bend.triggering import records
from projections.queries import triggers as trigger_queries

__all__ = ["BulkStarted", "BulkTooLarge", "BulkTooManyRuns", "start_runs"]


class BulkTooManyRuns(BendError):
    """A bulk execute asked for more runs than one request may start."""

    status = 413

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} runs asked for in one request, at most {limit} are started "
                         "at once (BEND_API__BULK_MAX_RUNS); split the inputs into several "
                         "requests (`bend runs bulk` does)")
        self.count, self.limit = count, limit


class BulkTooLarge(BendError):
    """A bulk execute would produce more bytes of commands than one request may."""

    status = 413

    def __init__(self, size: int, limit: int, count: int) -> None:
        super().__init__(f"{count} runs would produce about {size} bytes of commands (each carries "
                         f"the workflow's definition and its input), over the limit of {limit} "
                         "(BEND_API__BULK_MAX_BYTES); send fewer runs per request")
        self.bytes, self.limit, self.count = size, limit, count


@dataclass(frozen=True, slots=True)
class BulkStarted:
    """The runs asked for, in input order: each run's id and its StartRun's position."""

    workflow_version: int
    runs: list[tuple[str, Position]]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


async def start_runs(deps: Deps, principal: Principal, workflow_id: str,
                     inputs: Sequence[Any], *, version: int | None = None,
                     idempotency_key: str | None = None) -> BulkStarted:
    """Ask for one run per input (None: the manual trigger's default), at most
    `BEND_API__BULK_MAX_RUNS` and `BEND_API__BULK_MAX_BYTES` of commands (refused over either,
    before anything is sent); run i's key is `<idempotency_key>:<i>`."""
    require(principal, "workflows:execute")
    limits = deps.settings.api
    if len(inputs) > limits.bulk_max_runs:
        raise BulkTooManyRuns(len(inputs), limits.bulk_max_runs)
    version, definition = await pinned(deps, principal, workflow_id, version)
    # Every command carries the pinned definition whole: a small request can fan out into a
    # large produce, so its size is bounded, not just the request body's.
    size = len(inputs) * _json_size(definition) + sum(map(_json_size, inputs))
    if size > limits.bulk_max_bytes:
        raise BulkTooLarge(size, limits.bulk_max_bytes, len(inputs))
    if any(i is None for i in inputs):  # a manual trigger's default_input fills them
        default = await trigger_queries.manual_default_input(deps.pool, principal.project,
                                                             workflow_id)
        inputs = [default if i is None else i for i in inputs]
    check_inputs(workflow_id, definition, inputs, [f"inputs[{i}]" for i in range(len(inputs))])
    now = datetime.now(timezone.utc)
    commands = []
    for i, run_input in enumerate(inputs):
        key = None if idempotency_key is None else f"{idempotency_key}:{i}"
        commands.append(records.start_run(records.run_id_for(workflow_id, key), workflow_id,
                                          version, definition, run_input, key,
                                          deps.settings.tenant, principal, now))
    positions: list[Position] = []
    step = limits.bulk_produce_concurrency  # records in flight at once, in input order
    for at in range(0, len(commands), step):
        positions += await deps.producer.send_many(commands[at:at + step])
    return BulkStarted(version, [(c.run_id or "", p)
                                 for c, p in zip(commands, positions, strict=False)])
