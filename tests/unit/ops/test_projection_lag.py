"""Projection lag in seconds: none while nothing waits, the wait since the last record applied
while records wait, unknown for a partition that applied nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from projections.lag import PartitionLag, ProjectionLag

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def _p(lag: int, ago_s: float | None, partition: int = 0) -> PartitionLag:
    at = None if ago_s is None else NOW - timedelta(seconds=ago_s)
    return PartitionLag("t", partition, 100, 100 - lag, lag, at)


def test_a_caught_up_partition_waits_no_seconds_however_old_its_last_record() -> None:
    assert _p(0, 3600).seconds(NOW) == 0.0
    assert _p(0, None).seconds(NOW) == 0.0


def test_a_lagging_partition_has_waited_since_its_last_applied_record() -> None:
    assert _p(5, 7.5).seconds(NOW) == 7.5
    assert _p(5, None).seconds(NOW) is None
    assert _p(5, -1).seconds(NOW) == 0.0  # a clock a little behind the broker's


def test_the_projection_waits_as_long_as_its_slowest_partition() -> None:
    lag = ProjectionLag((_p(0, 99, 0), _p(3, 4, 1), _p(9, 11, 2)))
    assert (lag.total, lag.seconds(NOW)) == (12, 11)
    assert ProjectionLag((_p(1, None, 0), _p(3, 4, 1))).seconds(NOW) is None
    assert ProjectionLag(()).seconds(NOW) == 0.0
