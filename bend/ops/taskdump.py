"""`kill -USR1 <pid>` prints every asyncio task's stack to stderr: what each one waits on, for
a process that does not stop or does not move (faulthandler shows only threads)."""

from __future__ import annotations

import asyncio
import signal
import sys

__all__ = ["dump_tasks", "install_task_dump"]


def dump_tasks() -> None:
    """Print each task of the running loop with the stack it is suspended at."""
    tasks = asyncio.all_tasks()
    print(f"--- {len(tasks)} asyncio task(s) ---", file=sys.stderr)
    for task in tasks:
        print(f"{task!r}", file=sys.stderr)
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def install_task_dump() -> None:
    """On SIGUSR1, dump the running loop's tasks (call from inside the loop)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
