"""Snapshot rounds are transactions of the partition's one writer: a new owner's claim fences the
previous one, whose later rounds are refused, and readers see whole rounds only."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from bend.contracts.admin import ensure_topics
from bend.contracts.codec import encode
from bend.core.commands import StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.settings import get_settings
from streams.app import topic_names
from streams.snapshots import PartitionMirror, Snapshotter, load_snapshot

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
DEFINITION = definition_json(parse_definition(
    {"name": "one", "steps": [{"id": "a", "type": "tool", "component": "noop@1"}]}))


def _started() -> list[bytes]:
    run_id = str(uuid.uuid4())
    decision = decide(None, StartRun(event_id=str(uuid.uuid4()), run_id=run_id,
                                     workflow_id="wf-one", workflow_version=1, occurred_at=NOW,
                                     correlation_id=run_id, definition=DEFINITION, input={}),
                      NOW)
    assert isinstance(decision, Accepted)
    return [encode(e) for e in decision.events]


async def test_a_claimed_partition_refuses_the_previous_writers_rounds() -> None:
    base = get_settings()
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}"})})
    ensure_topics(settings)
    names = topic_names(settings)
    old = Snapshotter(settings.kafka, names.run_events, names.run_states)
    new = Snapshotter(settings.kafka, names.run_events, names.run_states)
    try:
        await old.claim(0)
        stale = PartitionMirror(0, lag_ms=0)
        old.follow(stale)
        for i, value in enumerate(_started()):
            stale.feed(i, 0, b"stale-run", value)
        await new.claim(0)  # the new owner, before it reads the snapshot
        await old.write_rounds(now_ms=1)  # the paused old owner wakes up and tries
        assert 0 not in old.mirrors, "a fenced writer stops writing the partition"
        fresh = PartitionMirror(0, lag_ms=0)
        new.follow(fresh)
        for i, value in enumerate(_started()):
            fresh.feed(i, 0, b"fresh-run", value)
        await new.write_rounds(now_ms=2)
        loaded = await load_snapshot(settings.kafka, names.run_states, 0)
    finally:
        await old.close()
        await new.close()
    assert set(loaded.runs) == {"fresh-run"}
    assert loaded.round is not None and loaded.round.taken_at_ms == 2
