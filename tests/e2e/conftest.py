"""What most e2e modules share: an engine per module, and an API beside it per test.

A module that needs another shape (no executor, two orchestrators, one API for the module)
defines its own `engine` or `api` fixture, which takes the place of these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bend.devstack.engine import Engine, running_engine
from bend.server.testing import RunningApi, api_beside


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    """An orchestrator, one executor and the scripted model on topics of the module's own."""
    with running_engine() as engine:
        yield engine


@pytest.fixture()
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    """The API and its projector on the engine's topics, with read models of the test's own."""
    async with api_beside(engine.settings) as running:
        yield running
