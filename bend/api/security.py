"""The API's security state: the `sec_*` tables in a schema of their own, the Security bundle and
the first admin key.

The tables live outside the read models' schema on purpose: a rebuild fills a fresh read
schema and swaps to it, and keys, secrets and seen webhook deliveries must survive that. The
schema is named after the installation's topic prefix (`bend` -> `bend_security`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bend.security.database import security_pool, security_schema
from bend.security.dependencies import Security, build_security
from bend.security.keyfiles import load_keys
from bend.security.keystore import ApiKeyStore
from bend.settings import Settings

__all__ = ["bootstrap_key", "open_security", "security_pool", "security_schema"]


@contextlib.asynccontextmanager
async def open_security(settings: Settings) -> AsyncIterator[Security]:
    """The Security bundle over its own pool, for the app's lifespan."""
    async with security_pool(settings, max_size=max(2, settings.database.max_pool // 2)) as pool:
        yield await build_security(pool, settings)


async def bootstrap_key(settings: Settings, project: str | None = None) -> str | None:
    """A new admin key's full text if `project` (default: settings.project) has no active admin
    key, else None. Show it once: only its hash is stored."""
    async with security_pool(settings, max_size=1) as pool:
        store = ApiKeyStore(pool, load_keys(settings).api_key_pepper)
        issued = await store.bootstrap_admin(project or settings.project)
    return issued.key if issued else None
