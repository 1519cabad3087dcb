"""The statements records turn into, and running a batch's statements in few round trips.

Each `Write` names the rows it touches (its lane). Writes in one lane run in log order; writes
in different lanes touch different rows, so they commute. A batch runs in waves: wave k holds
the k-th write of every lane, and each wave's writes run as one `executemany` per statement.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = ["Write", "execute_in_order", "execute_in_waves"]


@dataclass(frozen=True, slots=True)
class Write:
    """One SQL statement with its arguments, and the lane (rows) it touches."""

    lane: Hashable
    sql: str
    args: tuple[Any, ...]


async def execute_in_order(conn: asyncpg.Connection, writes: Iterable[Write]) -> None:
    """Run writes one by one (for a single record)."""
    for w in writes:
        await conn.execute(w.sql, *w.args)


async def execute_in_waves(conn: asyncpg.Connection, writes: Sequence[Write]) -> int:
    """Run writes keeping each lane's order, batching across lanes; round trips used."""
    lanes: dict[Hashable, deque[Write]] = defaultdict(deque)
    for w in writes:
        lanes[w.lane].append(w)
    trips = 0
    while lanes:
        wave: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for lane in list(lanes):
            queue = lanes[lane]
            w = queue.popleft()
            wave[w.sql].append(w.args)
            if not queue:
                del lanes[lane]
        for sql, args in wave.items():
            if len(args) == 1:
                await conn.execute(sql, *args[0])
            else:
                await conn.executemany(sql, args)
            trips += 1
    return trips
