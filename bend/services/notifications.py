"""The notifier's delivery log, as a project's callers read it."""

from __future__ import annotations

from typing import Any

from bend.security.roles import Principal, require
from bend.services.deps import Deps
from projections.queries import notifications as queries

__all__ = ["deliveries"]


async def deliveries(deps: Deps, principal: Principal, *, run_id: str | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
    """The deliveries of the caller's project (of `run_id` only, if given), newest first."""
    require(principal, "runs:read")
    return await queries.deliveries(deps.pool, principal.project, run_id=run_id, limit=limit)
