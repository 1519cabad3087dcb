"""The hop profile keeps phase durations only when enabled and summarises them per period."""

from __future__ import annotations

import time
from types import SimpleNamespace

from structlog.testing import capture_logs

from streams.hops import HopProfile


def test_a_disabled_profile_keeps_nothing() -> None:
    profile = HopProfile()
    profile.add("decide", 1.0)
    profile.received(SimpleNamespace(topic="t", partition=0, offset=1, timestamp=1.0))
    assert profile.summary() == {}


def test_a_record_is_timed_from_its_fetch_and_its_producer_timestamp() -> None:
    profile = HopProfile()
    profile.enabled = True
    now = time.time()
    profile.fetched_at[("t", 0, 5)] = now - 0.002
    profile.received(SimpleNamespace(topic="t", partition=0, offset=5, timestamp=now - 0.005))
    summary = profile.summary()
    assert 2.0 <= summary["faust_handoff"]["p50"] < 50
    assert 2.9 <= summary["kafka"]["p50"] <= 3.1
    assert ("t", 0, 5) not in profile.fetched_at


def test_the_report_logs_percentiles_and_starts_a_new_period() -> None:
    profile = HopProfile()
    profile.enabled = True
    for ms in range(1, 101):
        profile.add("decide", float(ms))
    with capture_logs() as logs:
        profile.report("orchestrator")
    assert logs[0]["event"] == "hop_profile" and logs[0]["role"] == "orchestrator"
    assert logs[0]["phases"]["decide"] == {"p50": 51.0, "p99": 100.0, "n": 100}
    assert profile.summary() == {}
