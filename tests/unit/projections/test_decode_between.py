"""Decoding a fetched batch in slices: the same records as in one go, with the event loop given
a turn between slices (so a batch being applied gets its database answers meanwhile)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

from bend.contracts.codec import decode, encode
from bend.core.commands import Command
from bend.core.events import Event, StepStarted
from projections.project import Consumed, Decoded, decode_all, decode_between


def _batch(n: int) -> list[Consumed]:
    at = datetime(2026, 1, 2, tzinfo=timezone.utc)
    out = [Consumed("t", 0, i, encode(StepStarted(
        event_id=f"e-{i}", run_id="r", workflow_id="wf", seq=i + 1, occurred_at=at,
        step_id=f"s-{i}"))) for i in range(n)]
    out[7] = Consumed("t", 0, 7, b"not avro")  # undecodable: kept, with its error
    return out


def _plain(items: list[Decoded]) -> list[tuple[object, ...]]:
    return [(d.consumed, d.record, type(d.error), str(d.error)) for d in items]


def test_sliced_decoding_gives_what_decoding_in_one_go_gives() -> None:
    batch = _batch(1001)
    sliced = asyncio.run(decode_between(batch, decode, every=100))
    assert _plain(sliced) == _plain(decode_all(batch, decode))
    assert sliced[7].record is None and sliced[7].error is not None
    assert asyncio.run(decode_between([], decode)) == []


def test_another_task_runs_between_the_slices() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def other() -> None:
            for _ in range(3):
                seen.append("other")
                await asyncio.sleep(0)

        async def decoding() -> None:
            await decode_between(_batch(30), _noting(seen), every=10)

        await asyncio.gather(decoding(), other())
        return seen

    # A slice of 10, then the other task's turn, and so on (the other task starts once the
    # first slice has given the loop a turn).
    assert asyncio.run(main()) == (["decoded"] * 10 + ["other"]) * 3


def _noting(seen: list[str]) -> Callable[[bytes], Event | Command]:
    def note(data: bytes) -> Event | Command:
        seen.append("decoded")
        return decode(data)
    return note
