"""`kill -USR1` prints every asyncio task's stack to stderr."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bend.ops.taskdump import install_task_dump


async def test_sigusr1_prints_each_task_where_it_waits(capsys: pytest.CaptureFixture[str]) -> None:
    async def waiting_for_the_lock() -> None:
        await asyncio.sleep(60)

    task = asyncio.create_task(waiting_for_the_lock(), name="held")
    install_task_dump()
    try:
        await asyncio.sleep(0)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.05)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        task.cancel()
    err = capsys.readouterr().err
    assert "asyncio task(s)" in err and "name='held'" in err
    assert "waiting_for_the_lock" in err
