"""The runs page tells readers when the read models trail the log, and stops once they catch up
(rendered by the server, read as a browser would get it)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import pytest

from bench.projection_history import sample_history
from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.kafka.producer import RecordProducer
from bend.settings import get_settings
from projections.projector import Projector
from tests.e2e.web_pages import get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    """The API and UI with no projector: whatever is produced waits in the log."""
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings, projector=False) as running:
            yield running
    finally:
        await drop_isolated(settings)


async def test_the_runs_page_says_the_read_models_are_behind_until_they_catch_up(
        api: RunningApi) -> None:
    history = sample_history(workflows=1, runs_per_workflow=2, steps=1, tag="lag")
    async with RecordProducer(api.settings) as producer:
        await producer.send_many(history)
    client = await signed_in(api, await api.key("viewer"))
    try:
        deadline = time.monotonic() + 30  # the page shows the lag read in the background
        while (page := await get_page(client, "/ui/runs")).by_id("projection-lag") is None:
            assert page.status == 200 and time.monotonic() < deadline, "no lag notice"
            await asyncio.sleep(0.2)
        # The history, and what the API itself produced at start (its components).
        behind = re.search(r"The read models are behind by ([\d,]+) records", page.html)
        assert behind and int(behind[1].replace(",", "")) >= len(history), page.html[:3000]

        projector = Projector(api.settings, max_batch=500, poll_ms=50)
        task = asyncio.create_task(projector.run())
        try:
            deadline = time.monotonic() + 60
            while (await get_page(client, "/ui/runs")).by_id("projection-lag") is not None:
                assert time.monotonic() < deadline, "the notice stayed after the catch-up"
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.aclose()
