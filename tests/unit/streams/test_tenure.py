"""A worker that may have been fenced out (its loop stalled for half a session or more) reports
a task only once the group's verdict is in: withheld if a rebalance begins, else reported."""

from __future__ import annotations

import asyncio

from streams.tenure import Tenure


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Group:
    """Counts rebalances as Faust's App.rebalancing_count does."""

    def __init__(self) -> None:
        self.rebalances = 0

    def __call__(self) -> int:
        return self.rebalances


def _tenure() -> tuple[Tenure, Clock, Group]:
    clock, group = Clock(), Group()
    return Tenure(group, session_timeout_s=6.0, clock=clock, tick_s=0.001), clock, group


async def test_without_a_stall_a_task_is_reported_at_once() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    clock.now += 2.9  # a slow step, the loop ticking all along
    tenure._tick()  # noqa: SLF001 - the watch's tick, by hand
    group.rebalances += 1  # an ordinary rebalance waits for the step's ack: still ours
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is True


async def test_after_a_stall_a_rebalance_withholds_the_report() -> None:
    tenure, clock, group = _tenure()
    tenure.watching = True
    receipt = tenure.receipt()
    clock.now += 30  # SIGSTOP for 30 s: the step's end runs before the watch ticks again

    async def fenced() -> None:
        await asyncio.sleep(0.01)
        group.rebalances += 1  # the consumer's heartbeat was refused: it rejoins

    asyncio.ensure_future(fenced())
    assert await asyncio.wait_for(tenure.holds(receipt), 1) is False


async def test_after_a_stall_the_ticked_gap_still_counts() -> None:
    tenure, clock, group = _tenure()
    tenure.watching = True
    receipt = tenure.receipt()
    clock.now += 30
    tenure._tick()  # noqa: SLF001 - the watch woke first this time
    group.rebalances += 1
    assert await asyncio.wait_for(tenure.holds(receipt), 1) is False


async def test_after_a_stall_without_a_rebalance_for_a_session_the_task_is_reported() -> None:
    tenure, clock, _group = _tenure()
    tenure.watching = True
    receipt = tenure.receipt()
    clock.now += 4  # long enough to doubt, too short to have lost the session
    tenure._tick()  # noqa: SLF001
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()  # waits for the verdict
    clock.now += 6.0  # a session of heartbeats accepted, no rebalance
    assert await asyncio.wait_for(holds, 1) is True


async def test_a_stall_before_the_task_arrived_does_not_hold_it_back() -> None:
    tenure, clock, group = _tenure()
    tenure.watching = True
    clock.now += 30
    tenure._tick()  # noqa: SLF001
    group.rebalances += 1
    receipt = tenure.receipt()  # received after the rejoin, under the new assignment
    clock.now += 0.05
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is True
