"""The run-event payload the projector writes to JSONB: orjson's spelling of a record is the
same JSON as the dict `payload_of` builds, for every record type and any field values (big
integers, bytes, datetimes in any zone included)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bend.contracts.codec import RECORD_TYPES
from bend.core.events import StepRetryScheduled, StepSucceeded
from projections.payload import payload_json, payload_of
from tests.unit.contracts.test_codec import records


def _same_json(record: Any) -> None:
    assert json.loads(payload_json(record)) == json.loads(json.dumps(payload_of(record)))


@pytest.mark.parametrize("cls", list(RECORD_TYPES.values()), ids=list(RECORD_TYPES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_type_spells_the_same_json_either_way(cls: type,
                                                           data: st.DataObject) -> None:
    _same_json(data.draw(records(cls)))


def test_an_integer_past_64_bits_falls_back_to_the_standard_encoder() -> None:
    record = StepSucceeded(
        event_id="e-1", run_id="r-1", workflow_id="wf", workflow_version=2, seq=7,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), step_id="s",
        output={"big": 2**80, "small": -3}, duration_ms=12)
    assert json.loads(payload_json(record))["output"] == {"big": 2**80, "small": -3}
    assert json.loads(payload_json(record))["occurred_at"] == "2026-01-02T03:04:05+00:00"


def test_bytes_are_base64() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class _Blob:
        data: bytes

    assert json.loads(payload_json(_Blob(b"\x00\xffab")))["data"] == \
        base64.b64encode(b"\x00\xffab").decode()


@pytest.mark.parametrize("at", [
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    datetime(2026, 1, 2, 3, 4, 5, 1),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(minutes=-90, seconds=-7))),
], ids=["utc", "utc-whole-second", "naive", "plus-0530", "offset-with-seconds"])
def test_datetimes_are_spelled_as_isoformat_spells_them_in_every_zone(at: datetime) -> None:
    record = StepRetryScheduled(
        event_id="e-1", run_id="r-1", workflow_id="wf", seq=3, occurred_at=at, step_id="s",
        next_attempt=2, delay_ms=10,
        retry_at=at.replace(microsecond=5) if at.tzinfo is None else at)
    spelled = json.loads(payload_json(record))
    assert spelled["occurred_at"] == at.isoformat()
    assert spelled["retry_at"] == record.retry_at.isoformat()
