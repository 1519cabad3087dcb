"""A worker reports a task only while its group generation is the one the task came in; when it
may not have heard yet (its loop stalled, a rebalance waited for it too long), it waits for the
group's verdict first."""

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
    """The consumer's generation and rebalancing flag, as aiokafka and Faust hold them."""

    def __init__(self) -> None:
        self.generation: int | None = 7
        self.rebalancing = False

    def evict(self) -> None:
        """The coordinator no longer knows the member: aiokafka resets the generation."""
        self.generation = -1


def _run_for(tenure: Tenure, clock: Clock, seconds: float) -> None:
    """Let `seconds` pass with the watch ticking (no stall)."""
    for _ in range(int(seconds / 0.5)):
        clock.now += 0.5
        tenure.tick()


def _tenure() -> tuple[Tenure, Clock, Group]:
    clock, group = Clock(), Group()
    tenure = Tenure(lambda: group.generation, session_timeout_s=6.0, rebalance_timeout_s=6.0,
                    heartbeat_s=1.0, rebalancing=lambda: group.rebalancing, clock=clock,
                    tick_s=0.001)
    tenure.watching = True  # as if `watch` ran; the tests tick by hand
    return tenure, clock, group


async def test_a_task_is_reported_at_once_while_its_generation_holds() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    clock.now += 2.9  # a slow step, the loop ticking all along
    tenure.tick()
    group.rebalancing = True  # an ordinary rebalance waits for the step's ack: still ours
    tenure.tick()
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is True


async def test_a_task_of_an_older_generation_is_withheld() -> None:
    tenure, _clock, group = _tenure()
    receipt = tenure.receipt()
    group.evict()
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is False


async def test_after_a_stall_the_report_waits_for_the_heartbeats_verdict() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    clock.now += 30  # SIGSTOP for 30 s: the step's end runs before the watch ticks again
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()  # the generation still looks current: the heartbeat has not run
    group.evict()  # ...and is refused
    assert await asyncio.wait_for(holds, 1) is False


async def test_after_a_stall_the_ticked_gap_still_counts() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    clock.now += 30
    tenure.tick()  # the watch woke first this time
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()
    group.evict()
    assert await asyncio.wait_for(holds, 1) is False


async def test_after_a_stall_the_group_kept_a_whole_session_the_task_is_reported() -> None:
    tenure, clock, _group = _tenure()
    receipt = tenure.receipt()
    clock.now += 4  # long enough to doubt, too short to have lost the session
    tenure.tick()
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()
    clock.now += 6.0  # a session of heartbeats accepted, the generation unchanged
    assert await asyncio.wait_for(holds, 1) is True


async def test_a_stall_before_the_task_arrived_does_not_hold_it_back() -> None:
    tenure, clock, group = _tenure()
    clock.now += 30
    tenure.tick()
    group.generation = 8  # rejoined
    receipt = tenure.receipt()  # received under the new assignment
    clock.now += 0.05
    tenure.tick()
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is True


async def test_a_rebalance_that_waited_past_its_timeout_waits_for_the_eviction() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    group.rebalancing = True  # a worker joined; the revocation waits for this step
    tenure.tick()
    _run_for(tenure, clock, 5.5)  # past the timeout but for a heartbeat: it may have gone on
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()
    group.evict()  # the next heartbeat: the member is unknown
    assert await asyncio.wait_for(holds, 1) is False


async def test_a_rebalance_that_waited_long_but_kept_the_member_reports_in_the_end() -> None:
    tenure, clock, group = _tenure()
    receipt = tenure.receipt()
    group.rebalancing = True
    tenure.tick()
    _run_for(tenure, clock, 5.5)
    holds = asyncio.ensure_future(tenure.holds(receipt))
    await asyncio.sleep(0.02)
    assert not holds.done()
    _run_for(tenure, clock, 3.0)  # past the group's timer and two heartbeats, still ours
    assert await asyncio.wait_for(holds, 1) is True


async def test_without_a_consumer_every_task_is_reported() -> None:
    tenure, _clock, group = _tenure()
    group.generation = None
    receipt = tenure.receipt()
    assert await asyncio.wait_for(tenure.holds(receipt), 0.1) is True
