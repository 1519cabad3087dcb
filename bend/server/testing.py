"""A running API for tests, demos and benches: fresh topics and schema, the projector, a client.

    async with running_api(isolated_settings(get_settings())) as api:
        r = await api.client.post("/api/workflows", json=definition)

The app runs in-process behind httpx's ASGI transport (no socket); its lifespan opens the same
connections as in production. Everything runs on the real Kafka and Postgres. The client sends
an admin key of the settings' project; `await api.key(role, project)` makes others.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
from fastapi import FastAPI

from bend.server.app import create_app
from bend.contracts.admin import ensure_topics
from bend.contracts.topics import topic_specs
from bend.kafka import clients
from bend.security.dependencies import Security
from bend.security.roles import Role
from bend.settings import Settings
from projections.db import database_url
from projections.projector import Projector

__all__ = ["RunningApi", "api_beside", "drop_isolated", "isolated_settings", "running_api"]


def isolated_settings(base: Settings, prefix: str | None = None, partitions: int = 3) -> Settings:
    """`base` with a topic prefix and read-model schema of its own (topics are created)."""
    prefix = prefix or f"api{uuid.uuid4().hex[:10]}"
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix,
                                          "default_partitions": partitions})
    database = base.database.model_copy(update={"url": database_url(base),
                                                "schema_name": f"{prefix}_read"})
    settings = base.model_copy(update={"kafka": kafka, "database": database})
    ensure_topics(settings)
    return settings


async def drop_isolated(settings: Settings, *, topics: bool = True) -> None:
    """Drop every schema named after the prefix, and delete its topics (unless `topics` is
    False: other processes, like a test engine's workers, still use them)."""
    prefix = settings.kafka.topic_prefix
    conn = await asyncpg.connect(database_url(settings))
    try:
        for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                    f"{prefix}%"):
            await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()
    if not topics:
        return
    admin = clients.confluent_admin(settings.kafka)
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{prefix}.")]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


@dataclass(frozen=True, slots=True)
class RunningApi:
    """The app, a client bound to it (with an admin key), its settings and the projector
    feeding its read models."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    projector: Projector | None
    admin_key: str

    async def key(self, role: Role | str, project: str | None = None) -> str:
        """A new API key's full text, of `project` (default: the settings') with `role`."""
        security: Security = self.app.state.security
        issued = await security.keys.create(
            project or self.settings.project, role, name="tests", created_by="tests")
        return issued.key

    def headers(self, key: str) -> dict[str, str]:
        """Request headers authenticating with `key` (or a token)."""
        return {"Authorization": f"Bearer {key}"}

    async def log_ends(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> end offset, for every topic of the settings: equal before and
        after a request means it produced nothing."""
        topics = [spec.name for spec in topic_specs(self.settings)]
        bounds = await self.app.state.bend.offsets.bounds(topics)
        return {tp: end for tp, (_, end) in bounds.items()}


@contextlib.asynccontextmanager
async def running_api(settings: Settings, *, projector: bool = True) -> AsyncIterator[RunningApi]:
    """Start the app's lifespan (and a projector task), yield a client, stop it all."""
    app = create_app(settings)
    task: asyncio.Task[None] | None = None
    # A consumer group of its own: tests that share an engine's topics each start an API, and
    # a group shared with the previous test's projector rebalanced under the next one.
    group = f"{settings.kafka.topic_prefix}-projector-{uuid.uuid4().hex[:8]}"
    feeder = (Projector(settings, max_batch=500, poll_ms=50, group_id=group)
              if projector else None)
    async with app.router.lifespan_context(app):
        if feeder is not None:
            task = asyncio.create_task(feeder.run(), name="projector")
        try:
            issued = await app.state.security.keys.create(settings.project, Role.ADMIN,
                                                          name="tests", created_by="tests")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bend.test",
                                         headers={"Authorization": f"Bearer {issued.key}"},
                                         timeout=30) as client:
                yield RunningApi(app, client, settings, feeder, issued.key)
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def api_beside(engine_settings: Settings, *,
                     ready_s: float | None = None) -> AsyncIterator[RunningApi]:
    """An app (and projector) on an engine's topics, with read models of its own, dropped after;
    the topics stay (the engine's workers still use them), and so does the security schema,
    named by the topic prefix, which the engine's executors read secrets from. With `ready_s`,
    the projector has its partitions (within that many seconds) before the app is yielded."""
    kafka = engine_settings.kafka
    settings = isolated_settings(engine_settings, prefix=kafka.topic_prefix,
                                 partitions=kafka.default_partitions)
    try:
        async with running_api(settings) as running:
            if ready_s is not None:
                assert running.projector is not None
                await asyncio.wait_for(running.projector.ready.wait(), ready_s)
            yield running
    finally:
        await drop_isolated(settings, topics=False)
