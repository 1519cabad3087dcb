"""The archiver's ops server without Kafka: archive lag from the segments on disk, the gaps it
found, a writable archive directory, and /livez, /readyz and /metrics over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from structlog.testing import capture_logs

from bend.archive.format import ArchivedRecord
from bend.archive.ops import publish_lag, run_with_ops
from bend.archive.store import ArchiveStore
from bend.ops.health import run_checks, writable_dir_check
from bend.settings import KafkaSettings, OpsSettings, Settings
from tests.ops_http import http_get

pytestmark = pytest.mark.timeout(30)

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _records(topic: str, partition: int, offsets: range) -> list[ArchivedRecord]:
    return [ArchivedRecord(topic, partition, n, b"k", b"v", 0, "RunStarted", "r", n, AT)
            for n in offsets]


class FakeArchiver:
    """What the ops server reads of an archiver; `run()` waits until cancelled."""

    def __init__(self, root: Path, topics: list[str]) -> None:
        self.store = ArchiveStore(root)
        self.topics = topics
        self.group_id = "t-archiver"
        self.owned: set[tuple[str, int]] = set()
        self.gaps = 0
        self.archived = 0

    def assignment(self) -> set[tuple[str, int]]:
        return set(self.owned)

    async def run(self) -> None:
        await asyncio.Event().wait()


class FakeOffsets:
    def __init__(self, bounds: dict[tuple[str, int], tuple[int, int]]) -> None:
        self.bounds_now = bounds

    async def bounds(self, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
        return {tp: b for tp, b in self.bounds_now.items() if tp[0] in topics}


def _lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value("bend_archive_lag",
                                     {"topic": topic, "partition": str(partition)})


async def test_archive_lag_is_the_log_past_the_last_segment_on_each_owned_partition(
        tmp_path: Path) -> None:
    archiver = FakeArchiver(tmp_path, ["lag.runs"])
    archiver.store.write(_records("lag.runs", 0, range(10)))
    archiver.store.write(_records("lag.runs", 2, range(50)))
    offsets = FakeOffsets({("lag.runs", 0): (0, 25),  # 10 archived: 15 behind
                           ("lag.runs", 1): (4, 9),  # none archived, 4 expired: 5 behind
                           ("lag.runs", 2): (0, 50),
                           ("lag.other", 0): (0, 99)})  # not archived here
    archiver.owned = {("lag.runs", 0), ("lag.runs", 1)}
    await publish_lag(archiver, offsets)  # type: ignore[arg-type]
    assert (_lag("lag.runs", 0), _lag("lag.runs", 1), _lag("lag.runs", 2)) == (15, 5, None)
    assert REGISTRY.get_sample_value("bend_consumer_lag", {
        "group": "t-archiver", "topic": "lag.runs", "partition": "0"}) == 15

    archiver.store.write(_records("lag.runs", 0, range(10, 25)))
    archiver.owned = {("lag.runs", 0), ("lag.runs", 2)}  # partition 1 went to another archiver
    await publish_lag(archiver, offsets)  # type: ignore[arg-type]
    assert (_lag("lag.runs", 0), _lag("lag.runs", 1), _lag("lag.runs", 2)) == (0, None, 0)

    archiver.owned = set()
    await publish_lag(archiver, offsets)  # type: ignore[arg-type]
    assert _lag("lag.runs", 0) is None and _lag("lag.runs", 2) is None


async def test_the_archive_directory_is_ready_when_a_file_can_be_written_there(
        tmp_path: Path) -> None:
    made = tmp_path / "new" / "archive"
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    report = await run_checks({"made": writable_dir_check(made, "BEND_ARCHIVE__DIR"),
                               "blocked": writable_dir_check(blocked / "archive",
                                                             "BEND_ARCHIVE__DIR")}, 2.0)
    assert report.checks["made"].ok and made.is_dir() and list(made.iterdir()) == []
    assert not report.checks["blocked"].ok
    assert "BEND_ARCHIVE__DIR" in report.checks["blocked"].detail
    assert str(blocked / "archive") in report.checks["blocked"].detail



async def test_the_archiver_serves_liveness_readiness_and_its_gaps_over_http(
        tmp_path: Path) -> None:
    settings = Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:1"),  # nothing listens
                        ops=OpsSettings(host="127.0.0.1", port=0, check_timeout_s=1.0,
                                        lag_interval_s=60))
    archiver = FakeArchiver(tmp_path / "archive", ["ops.runs"])
    archiver.gaps, archiver.archived = 2, 40
    with capture_logs() as logs:
        task = asyncio.create_task(run_with_ops(archiver, settings))  # type: ignore[arg-type]
        for _ in range(50):
            await asyncio.sleep(0.05)
            if any(e["event"] == "ops_listening" for e in logs):
                break
    (listening,) = [e for e in logs if e["event"] == "ops_listening"]
    assert listening["role"] == "archiver" and listening["host"] == "127.0.0.1"
    url = listening["url"]
    try:
        status, body = await asyncio.to_thread(http_get, f"{url}/livez")
        assert status == 200 and json.loads(body)["live"] is True

        status, body = await asyncio.to_thread(http_get, f"{url}/readyz")
        checks = json.loads(body)["checks"]
        assert status == 503 and set(checks) == {"kafka", "archive_dir", "assignment"}
        assert checks["archive_dir"]["ok"] and not checks["kafka"]["ok"]
        assert "no partition of group t-archiver" in checks["assignment"]["detail"]

        status, text = await asyncio.to_thread(http_get, f"{url}/metrics")
        assert status == 200
        assert "bend_archive_gaps_total 2.0" in text
        assert "bend_archived_records_total 40.0" in text
        assert 'bend_info{role="archiver"' in text
        archiver.gaps = 3  # read at scrape time
        assert "bend_archive_gaps_total 3.0" in (await asyncio.to_thread(
            http_get, f"{url}/metrics"))[1]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(OSError):  # stopped
        await asyncio.to_thread(urllib.request.urlopen, f"{url}/livez", timeout=2)
    assert b"bend_archive_gaps" not in generate_latest(REGISTRY)  # none watched any more
