"""Readiness reports and the heartbeat behind liveness."""

from __future__ import annotations

import asyncio
import time

from bend.ops.health import Heartbeat, NotReady, assignment_check, run_checks


async def test_checks_run_side_by_side_and_each_failure_says_what_failed() -> None:
    async def fine() -> str:
        await asyncio.sleep(0.2)
        return "answers"

    async def hangs() -> str:
        await asyncio.sleep(60)
        return "never"

    async def breaks() -> str:
        raise NotReady("the thing is down; start it")

    async def crashes() -> str:
        raise ValueError("bad")

    started = time.perf_counter()
    report = await run_checks({"fine": fine, "hangs": hangs, "breaks": breaks,
                               "crashes": crashes}, timeout_s=0.3)
    assert time.perf_counter() - started < 1.0  # bounded by one timeout, not their sum
    assert report.ready is False
    body = report.body()
    assert body["checks"]["fine"]["ok"] is True and body["checks"]["fine"]["detail"] == "answers"
    assert body["checks"]["hangs"] == {"ok": False, "detail": "no answer in 0.3 s",
                                       "ms": body["checks"]["hangs"]["ms"]}
    assert body["checks"]["breaks"]["detail"] == "the thing is down; start it"
    assert body["checks"]["crashes"]["detail"] == "ValueError: bad"


async def test_a_process_without_partitions_is_not_ready_and_with_them_it_is() -> None:
    held: set[tuple[str, int]] = set()
    check = assignment_check("p-executor", lambda: held)
    report = await run_checks({"assignment": check}, 1.0)
    assert not report.ready
    assert "no partition of group p-executor" in report.checks["assignment"].detail
    held.add(("p.tasks", 0))
    report = await run_checks({"assignment": check}, 1.0)
    assert report.ready and report.checks["assignment"].detail == \
        "1 partition(s) of group p-executor"


async def test_the_heartbeat_is_live_while_the_loop_beats_and_stalled_after() -> None:
    beat = Heartbeat(stall_after_s=0.2)
    task = asyncio.ensure_future(beat.run(every_s=0.05))
    await asyncio.sleep(0.3)
    assert beat.live()
    task.cancel()
    time.sleep(0.3)  # the loop is blocked: nothing beats
    assert not beat.live() and beat.since_s() >= 0.2
