"""The record keys a Kafka trigger fired lately: a bounded window, not every key ever fired.

Why a window is enough: a record's firing has a deterministic run id (from the workflow and
the dedupe key `topic/partition/offset`), and the orchestrator keeps every run id it started
and rejects a second StartRun for one (`streams.orchestrator`, `bend.core.decide`); the read
model keeps one firing per (trigger, dedupe key). So a record fired before that has left the
window and is read again (a replay reaching far back) starts no second run; it only writes one
more TriggerFired record, which the projection ignores. The window exists to spare that
traffic in the common cases: a redelivery after a crash re-reads at most one uncommitted batch
per partition (500 records), and a replay over recent records.

Per-partition high-water offsets were the other choice and are unsound here: after a filter
change, a replay must fire the records the old filter passed over, which lie below the
highest offset fired; an offset cannot tell "fired" from "filtered out".
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["DEFAULT_WINDOW", "RecentKeys"]

DEFAULT_WINDOW = 10_000


class RecentKeys:
    """The last `capacity` keys added, oldest forgotten first; `in` asks whether one is held."""

    def __init__(self, capacity: int = DEFAULT_WINDOW) -> None:
        if capacity < 1:
            raise ValueError("a window holds at least one key")
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> None:
        """Hold `key` (again the newest if held already); forget the oldest past capacity."""
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def update(self, keys: set[str] | list[str] | tuple[str, ...]) -> None:
        """Add each of `keys`."""
        for key in keys:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
