"""Deterministic ids: events, outbox commands, timers, child runs, step instances, idempotency keys.

Everything here is a pure function of ids already recorded, so `decide` on the same state and
command always produces the same ids (replay and redelivery give identical records).

Step instances: a step outside loops is its own instance (`fetch`). Inside a loop, iteration i
of a body step `summarize` is the instance `summarize[i]`; in nested loops the indices of the
enclosing iterations come first, outermost first: `summarize[2][0]`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache

__all__ = [
    "child_run_id", "command_id", "event_id", "idempotency_key", "instance_id",
    "parent_attempt", "split_instance", "timer_id", "unit_fraction",
]

_NAMESPACE = uuid.UUID("6f1c2d1e-5b7a-4c1e-9a53-0b2f3e4d5c6a")  # Bend's uuid5 namespace
_INSTANCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def event_id(command_event_id: str, index: int) -> str:
    """The id of the `index`-th event decided from the command `command_event_id`."""
    return str(uuid.uuid5(_NAMESPACE, f"{command_event_id}/event/{index}"))


def command_id(command_event_id: str, index: int) -> str:
    """The id of the `index`-th outbox command decided from the command `command_event_id`."""
    return str(uuid.uuid5(_NAMESPACE, f"{command_event_id}/outbox/{index}"))


def timer_id(run_id: str, purpose: str, step_id: str | None = None, attempt: int = 0) -> str:
    """A timer's id, unique across runs: `<run>:<purpose>[:<step>:<attempt>]`."""
    return f"{run_id}:{purpose}" if step_id is None else f"{run_id}:{purpose}:{step_id}:{attempt}"


def idempotency_key(run_id: str, step_id: str, attempt: int) -> str:
    """The key every side effect of one attempt carries: `<run>:<step>:<attempt>`."""
    return f"{run_id}:{step_id}:{attempt}"


def parent_attempt(key: str | None) -> int:
    """The parent step's attempt, read back from a child run's idempotency key (1 if none)."""
    if not key:
        return 1
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def child_run_id(run_id: str, step_id: str, attempt: int) -> str:
    """The run id of the child run that attempt `attempt` of a subworkflow step starts."""
    return str(uuid.uuid5(_NAMESPACE, f"{run_id}/child/{step_id}/{attempt}"))


def instance_id(step_id: str, indices: tuple[int, ...] = ()) -> str:
    """The id of `step_id`'s instance in the loop iterations `indices` (outermost first)."""
    return step_id + "".join(f"[{i}]" for i in indices)


@lru_cache(maxsize=65536)
def split_instance(instance: str) -> tuple[str, tuple[int, ...]]:
    """`(step_id, indices)` of an instance id; ValueError if it is not one."""
    match = _INSTANCE.fullmatch(instance)
    if match is None:
        raise ValueError(f"{instance!r} is not a step instance id (like `fetch` or `fetch[3]`)")
    indices = tuple(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return match.group(1), indices


def unit_fraction(*parts: object) -> float:
    """A number in [0, 1) derived from `parts` by sha256: randomness that replays exactly."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
