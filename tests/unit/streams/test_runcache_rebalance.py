"""A rebalance revokes every partition, then assigns: the ones given back whose run log did not
move meanwhile are kept as they are (a rebuild under way included), the others are dropped."""

from __future__ import annotations

import asyncio

from streams.runcache import PartitionRuns, RunCache


class _Cache(RunCache):
    """A RunCache whose rebuilds wait for a signal and whose log ends are set by the test."""

    def __init__(self) -> None:
        super().__init__("unused:9092", "unused")
        self.ends: dict[int, int] = {}
        self.rebuilds: list[int] = []
        self.release = asyncio.Event()

    async def _ends(self, partitions: set[int]) -> dict[int, int]:
        return {p: self.ends.get(p, 0) for p in partitions}

    async def _rebuild(self, partition: int):  # type: ignore[override]
        self.rebuilds.append(partition)
        await self.release.wait()
        return PartitionRuns(partition), None


async def test_partitions_given_back_unchanged_are_not_rebuilt() -> None:
    cache = _Cache()
    cache.release.set()
    first = {p: await cache.partition(p) for p in (0, 1, 2, 3)}
    await cache.hold({0, 1, 2, 3})
    cache.ends[1] = 5  # someone else wrote to partition 1's log meanwhile
    kept, dropped = await cache.resume({0, 1})
    assert (kept, dropped) == ({0}, {1, 2, 3})
    assert cache.owned() == {0: first[0]}
    assert await cache.partition(0) is first[0]
    assert await cache.partition(1) is not first[1]  # rebuilt again
    assert cache.rebuilds == [0, 1, 2, 3, 1]


async def test_a_rebuild_under_way_survives_a_join_that_gives_its_partition_back() -> None:
    cache = _Cache()
    waiting = asyncio.ensure_future(cache.partition(2))
    await asyncio.sleep(0)
    assert cache.known(2) and not cache.owned()
    await cache.hold({2})
    kept, _ = await cache.resume({2, 3})
    assert kept == {2}
    cache.release.set()
    runs = await waiting
    assert cache.owned() == {2: runs} and cache.rebuilds == [2]


async def test_a_rebuild_under_way_is_not_kept_when_its_partition_goes_elsewhere() -> None:
    cache = _Cache()
    waiting = asyncio.ensure_future(cache.partition(2))
    await asyncio.sleep(0)
    await cache.hold({2})
    await cache.resume({3})
    cache.release.set()
    await waiting
    assert cache.owned() == {}


async def test_no_held_state_decides_before_the_assignment_is_settled() -> None:
    cache = _Cache()
    cache.release.set()
    await cache.partition(0)
    await cache.hold({0})
    asked = asyncio.ensure_future(cache.partition(0))  # Faust resumed the partition early
    await asyncio.sleep(0.01)
    assert not asked.done()
    cache.ends[0] = 3  # our partition was written by someone else meanwhile
    await cache.resume({0})
    runs = await asked
    assert cache.rebuilds == [0, 0] and cache.owned() == {0: runs}
