"""Rate limits hold across API replicas: two app instances on one database share each key's
and each address's bucket (Postgres), so two replicas do not allow twice the rate; with the
per-process store they would. Real Postgres and Kafka."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEY_BURST = 6


def _settings(store: Literal["postgres", "memory"]) -> Settings:
    base = get_settings()
    security = base.security.model_copy(update={
        "key_burst": KEY_BURST, "key_rate_per_s": 0.01, "ip_burst": 1000, "ip_rate_per_s": 100,
        "rate_limit_store": store})
    return isolated_settings(base.model_copy(update={"security": security}))


@contextlib.asynccontextmanager
async def two_replicas(store: Literal["postgres", "memory"]
                       ) -> AsyncIterator[tuple[RunningApi, RunningApi]]:
    settings = _settings(store)
    try:
        async with running_api(settings, projector=False) as one, \
                running_api(settings, projector=False) as two:
            yield one, two
    finally:
        await drop_isolated(settings)


async def _allowed(one: RunningApi, two: RunningApi, key: str, requests: int) -> int:
    """How many of `requests` GETs, alternating between the replicas, were not refused."""
    passed = 0
    for i in range(requests):
        replica = (one, two)[i % 2]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=replica.app),
                                     base_url="http://bend.test") as client:
            r = await client.get("/api/health", headers=replica.headers(key))
            r = await client.get("/api/workflows", headers=replica.headers(key))
        assert r.status_code in (200, 429), r.text
        passed += r.status_code == 200
    return passed


async def test_two_replicas_share_a_keys_budget(kafka_bootstrap: str, database_url: str) -> None:
    async with two_replicas("postgres") as (one, two):
        key = await one.key("viewer")
        assert await _allowed(one, two, key, 3 * KEY_BURST) == KEY_BURST


async def test_with_the_per_process_store_each_replica_has_its_own(
        kafka_bootstrap: str, database_url: str) -> None:
    async with two_replicas("memory") as (one, two):
        key = await one.key("viewer")
        assert await _allowed(one, two, key, 3 * KEY_BURST) == 2 * KEY_BURST
