"""Small pure pieces of the core: durations, timestamps, ids, frozen maps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bend.core.durations import duration_ms, parse_duration, parse_timestamp
from bend.core.frozen import FrozenMap
from bend.core.ids import (
    child_run_id, event_id, idempotency_key, instance_id, parent_attempt, split_instance,
    timer_id, unit_fraction,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("5s", 5), ("2m", 120), ("1h30m", 5400), ("1d", 86400), ("1w", 604800),
    ("PT5S", 5), ("PT0.5S", 0.5), ("P1DT2H", 93600), ("pt1m", 60), (90, 90), (1.5, 1.5),
])
def test_durations_are_read_in_short_and_iso_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "5", "5 s", "P", "PT", "-5s", -1, True, "1e400s",
                                  "99999d", "P9999999999999D"])
def test_bad_or_absurd_durations_are_refused_with_the_forms_that_work(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


def test_duration_ms_gives_whole_milliseconds() -> None:
    assert duration_ms("1m") == 60_000 and duration_ms("PT0.25S") == 250


def test_timestamps_without_a_zone_are_utc_and_epoch_seconds_work() -> None:
    utc = timezone.utc
    assert parse_timestamp("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=utc)
    assert parse_timestamp("2025-01-01T00:00:00") == datetime(2025, 1, 1, tzinfo=utc)
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=utc)
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_timestamp("tomorrow")


def test_ids_are_deterministic_and_distinct() -> None:
    assert event_id("c", 0) == event_id("c", 0) != event_id("c", 1) != event_id("d", 1)
    assert child_run_id("r", "s", 1) != child_run_id("r", "s", 2)
    assert timer_id("r", "retry", "s[2]", 3) == "r:retry:s[2]:3"
    assert timer_id("r", "run_timeout") == "r:run_timeout"


def test_idempotency_keys_carry_the_attempt_back_to_a_parent() -> None:
    key = idempotency_key("run-1", "child[2]", 3)
    assert key == "run-1:child[2]:3" and parent_attempt(key) == 3
    assert parent_attempt(None) == 1 and parent_attempt("no-attempt") == 1


def test_instance_ids_round_trip() -> None:
    assert instance_id("fetch") == "fetch" and instance_id("fetch", (2, 0)) == "fetch[2][0]"
    assert split_instance("fetch[2][0]") == ("fetch", (2, 0))
    assert split_instance("fetch") == ("fetch", ())
    with pytest.raises(ValueError, match="not a step instance id"):
        split_instance("fetch[x]")


def test_unit_fraction_is_in_the_unit_interval_and_stable() -> None:
    values = [unit_fraction("r", "s", n) for n in range(200)]
    assert all(0 <= v < 1 for v in values) and values == [unit_fraction("r", "s", n)
                                                          for n in range(200)]
    assert 0.3 < sum(values) / len(values) < 0.7


def test_a_frozen_map_cannot_be_changed_in_place_and_updates_return_new_maps() -> None:
    m = FrozenMap({"a": 1})
    with pytest.raises(TypeError):
        m["b"] = 2  # type: ignore[index]
    n = m.set("b", 2).remove("a").update({"c": 3})
    assert dict(m) == {"a": 1} and dict(n) == {"b": 2, "c": 3}
    assert m == {"a": 1} and hash(m) == hash(FrozenMap({"a": 1}))
    assert m.remove("zz") is m and list(n) == ["b", "c"]
