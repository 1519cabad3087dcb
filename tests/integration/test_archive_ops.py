"""The archiver's ops server on real Kafka, scraped over HTTP on 127.0.0.1: Kafka and the
archive directory answer its readiness checks, it is ready once it holds its group's partitions,
its lag counts the records read but still buffered, and falls to zero once their segments are
on disk."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bench.projection_history import sample_history
from bend.archive.archiver import Archiver, archived_topics
from bend.archive.ops import run_with_ops
from bend.archive.status import archive_status
from bend.kafka.producer import RecordProducer
from bend.server.testing import drop_isolated, isolated_settings
from bend.settings import ArchiveSettings, OpsSettings, Settings, get_settings
from tests.ops_http import http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture()
async def settings(tmp_path: Path, kafka_bootstrap: str, database_url: str
                   ) -> AsyncIterator[Settings]:
    base = get_settings()
    archive = ArchiveSettings(dir=tmp_path / "archive", flush_after_s=4.0)
    ops = OpsSettings(host="127.0.0.1", port=0, lag_interval_s=0.2, check_timeout_s=5.0)
    isolated = isolated_settings(base.model_copy(update={"archive": archive, "ops": ops}),
                                 partitions=2)
    try:
        yield isolated
    finally:
        await drop_isolated(isolated)



async def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = await asyncio.to_thread(http_get, f"{url}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _lags(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {f"{dict(labels)['topic']}:{dict(labels)['partition']}": v
            for (name, labels), v in samples.items() if name == "bend_archive_lag"}


async def test_the_archivers_lag_counts_buffered_records_until_their_segments_are_written(
        settings: Settings) -> None:
    history = sample_history(workflows=1, runs_per_workflow=4, steps=2, tag="archops")
    async with RecordProducer(settings) as producer:
        await producer.send_many(history)
    in_log = sum(s.log_ends for s in await archive_status(settings))
    assert in_log > 0

    archiver = Archiver(settings)
    with capture_logs() as logs:
        task = asyncio.create_task(run_with_ops(archiver, settings))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if any(e["event"] == "ops_listening" for e in logs):
                break
    (listening,) = [e for e in logs if e["event"] == "ops_listening"]
    url = listening["url"]
    assert url.startswith("http://127.0.0.1:")
    try:
        status, body = await asyncio.to_thread(http_get, f"{url}/readyz")
        checks = json.loads(body)["checks"]
        assert checks["kafka"]["ok"] and checks["archive_dir"]["ok"], checks

        # Read and buffered (segments wait BEND_ARCHIVE__FLUSH_AFTER_S): all of it is lag.
        partitions = {f"{t}:{p}" for t in archived_topics(settings) for p in range(2)}
        deadline = time.monotonic() + 30
        while True:
            lags = _lags(await _metrics(url))
            if set(lags) == partitions and sum(lags.values()) == in_log:
                break
            assert time.monotonic() < deadline, f"no lag of {in_log} records: {lags}"
            await asyncio.sleep(0.1)
        assert archiver.archived == 0

        status, body = await asyncio.to_thread(http_get, f"{url}/readyz")
        assert status == 200, body

        deadline = time.monotonic() + 30
        while True:
            samples = await _metrics(url)
            if set(_lags(samples).values()) == {0.0}:
                break
            assert time.monotonic() < deadline, f"the lag never fell to 0: {_lags(samples)}"
            await asyncio.sleep(0.2)
        assert samples[("bend_archived_records_total", ())] == in_log
        assert samples[("bend_archive_gaps_total", ())] == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
