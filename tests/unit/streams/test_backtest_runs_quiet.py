"""A backtest's runs start no chained runs and send no notifications: the chainer and the
notifier read their RunRequested's backtest_id and owe them nothing, while the same run without
it owes its downstream start and its notification."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from bend.contracts.codec import codec_for
from bend.core.events import Event, RunCompleted, RunRequested
from bend.settings import get_settings
from streams.chaining import Chainer
from streams.notifications.notifier import Notifier

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
DEFINITION: dict[str, Any] = {
    "name": "noisy", "steps": [{"id": "a", "type": "transform", "expression": "input"}],
    "downstream": [{"workflow": "next_one"}],
    "notifications": [{"events": ["run_finished"], "webhook": {"url": "http://127.0.0.1:9/h"}}],
}


def _records(run_id: str, backtest_id: str | None) -> list[Event]:
    common = {"run_id": run_id, "workflow_id": "wf", "occurred_at": AT}
    return [RunRequested(event_id=f"{run_id}-1", seq=1, definition=DEFINITION, input={},
                         backtest_id=backtest_id, **common),
            RunCompleted(event_id=f"{run_id}-2", seq=2, output={}, **common)]


@pytest.mark.parametrize(("backtest_id", "owed"), [("bt-1", 0), (None, 1)])
async def test_a_backtest_run_chains_nothing(backtest_id: str | None, owed: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    chainer = Chainer(settings)
    started: list[Any] = []

    async def start(ended: Event, start: Any) -> None:
        started.append(start)

    monkeypatch.setattr(chainer, "_start", start)
    encode = codec_for(settings).encode
    for record in _records("r-chain", backtest_id):
        await chainer.handle(encode(record))
    assert len(started) == owed


@pytest.mark.parametrize(("backtest_id", "owed"), [("bt-1", 0), (None, 1)])
async def test_a_backtest_run_notifies_no_one(backtest_id: str | None, owed: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    notifier = Notifier(settings)
    delivered: list[Any] = []

    async def deliver(event: Event, plan: Any) -> None:
        delivered.append(plan)

    monkeypatch.setattr(notifier, "_deliver", deliver)
    encode = codec_for(settings).encode
    for record in _records("r-notify", backtest_id):
        await notifier.handle(encode(record))
    assert len(delivered) == owed
