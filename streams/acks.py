"""Manual acks: a source record's offset is released only once what it owes is delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Ack", "ack_when_delivered", "once"]

Ack = Callable[[], None]  # releases one source record's offset for commit


def ack_when_delivered(deliveries: list[asyncio.Future[Any]], ack: Ack) -> None:
    """Call `ack` once every delivery succeeded; never after a failed one.

    A failed delivery crashes the worker (streams/produce.py), so the record stays
    uncommitted and is handled again after the restart.
    """
    if not deliveries:
        ack()
        return

    def done(all_delivered: asyncio.Future[Any]) -> None:
        if not all_delivered.cancelled() and all_delivered.exception() is None:
            ack()

    asyncio.gather(*deliveries).add_done_callback(done)


def once(ack: Ack) -> Ack:
    """`ack` made safe to call twice (a handler that raised after queueing its ack)."""
    done = False

    def ack_once() -> None:
        nonlocal done
        if not done:
            done = True
            ack()

    return ack_once
