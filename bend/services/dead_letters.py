"""Dead letters as a caller sees them: listed, read and re-driven within the caller's scope
(those of its project's runs; installation admins also those of no run). The CLI, trusted with
the database, calls bend.deadletters with no scope."""

from __future__ import annotations

from typing import Any

from bend.deadletters.service import (
    DeadLetterFilter, DeadLetterScope, Redriven, get_dead_letter, list_dead_letters,
    redrive_dead_letter, redrive_dead_letters,
)
from bend.security.roles import Principal, installation_admin, require
from bend.services.deps import Deps

__all__ = ["get_letter", "list_letters", "redrive_letter", "redrive_letters", "scope_of"]


def scope_of(deps: Deps, principal: Principal) -> DeadLetterScope:
    """The dead letters `principal` may see."""
    return DeadLetterScope.of(deps.settings, principal.project,
                              admin=installation_admin(principal, deps.settings.project))


async def list_letters(deps: Deps, principal: Principal, filter: DeadLetterFilter, *,
                       limit: int, before: Any) -> list[dict[str, Any]]:
    """Dead letters matching `filter`, newest first (`limit` + 1 rows: one more says there are
    more), before the cursor position `before`."""
    require(principal, "dead_letters:read")
    return await list_dead_letters(deps.pool, filter, limit=limit, before=before,
                                   scope=scope_of(deps, principal))


async def get_letter(deps: Deps, principal: Principal, event_id: str) -> dict[str, Any]:
    """One dead letter: reason, error type, source position, key, headers, payload."""
    require(principal, "dead_letters:read")
    return await get_dead_letter(deps.pool, event_id, scope=scope_of(deps, principal))


async def redrive_letter(deps: Deps, principal: Principal, event_id: str, *,
                         force: bool) -> Redriven:
    """Send one dead letter's record back to its source topic, as the caller."""
    require(principal, "dead_letters:redrive")
    return await redrive_dead_letter(deps.pool, deps.producer, event_id,
                                     actor=principal.subject, force=force,
                                     scope=scope_of(deps, principal))


async def redrive_letters(deps: Deps, principal: Principal, *,
                          event_ids: list[str] | None = None,
                          filter: DeadLetterFilter | None = None,
                          force: bool) -> list[Redriven]:
    """Re-drive the named dead letters, or those matching `filter`, as the caller."""
    require(principal, "dead_letters:redrive")
    return await redrive_dead_letters(deps.pool, deps.producer, event_ids=event_ids,
                                      filter=filter, actor=principal.subject, force=force,
                                      scope=scope_of(deps, principal))
