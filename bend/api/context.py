"""What every request uses, opened once in the app's lifespan: pool, producer, offsets, watcher,
the token feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from bend.api.consistency import ProjectionWatcher
from bend.api.token_feed import TokenFeed
from bend.kafka.offsets import OffsetReader
from bend.kafka.producer import RecordProducer
from bend.settings import Settings
from bend.tracing import configure_tracing, shutdown_tracing
from projections.db import create_pool, database_url
from projections.migrate import migrate
from projections.project import projected_topics

__all__ = ["ApiContext", "open_context"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The API's connections: Postgres (read models), Kafka (commands, offsets)."""

    settings: Settings
    schema: str
    pool: asyncpg.Pool
    producer: RecordProducer
    offsets: OffsetReader
    watcher: ProjectionWatcher
    projected: tuple[str, ...]  # topics the read models follow
    tokens: TokenFeed  # the agent-tokens side channel, one consumer shared by its watchers


@contextlib.asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[ApiContext]:
    """Open everything (the read models' schema is migrated first), close it all on exit."""
    schema = settings.database.schema_name
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(database_url(settings), schema,
                                 min_size=settings.database.min_pool,
                                 max_size=settings.database.max_pool)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await migrate(conn, schema)
        if configure_tracing(settings, "api"):  # commands it sends carry their run's trace
            stack.callback(shutdown_tracing)
        producer = await stack.enter_async_context(RecordProducer(settings))
        offsets = await stack.enter_async_context(OffsetReader(settings))
        watcher = ProjectionWatcher(pool, schema)
        await watcher.start()
        stack.push_async_callback(watcher.stop)
        tokens = TokenFeed(settings)
        stack.push_async_callback(tokens.close)
        yield ApiContext(settings, schema, pool, producer, offsets, watcher,
                         tuple(projected_topics(settings)), tokens)
