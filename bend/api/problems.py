"""Errors of HTTP requests the API cannot serve as asked; the use cases' own errors (unknown run,
workflow deleted, invalid input...) live in bend.services.errors and are named here too."""

from __future__ import annotations

from collections.abc import Sequence

from bend.services.errors import (
    ApiError, IdempotencyConflict, InvalidInput, NotInstallationAdmin, RunFinished, UnknownRun,
    UnknownVersion, UnknownWorkflow, WorkflowDeleted,
)

__all__ = [
    "ApiError", "IdempotencyConflict", "InvalidCursor", "InvalidInput", "NotInstallationAdmin",
    "NotProjected",
    "RunFinished", "UnknownRun", "UnknownVersion", "UnknownWorkflow", "UnreadableBody",
    "WorkflowDeleted",
]


class InvalidCursor(ApiError):
    """A paging cursor that this API did not give out."""

    status = 400

    def __init__(self, cursor: str) -> None:
        super().__init__(f"cursor {cursor[:40]!r} is not one this API gave out; pass the "
                         "`next_cursor` of the previous page unchanged, or omit it for page one")


class UnreadableBody(ApiError):
    """A request body in a media type the endpoint does not read."""

    status = 415

    def __init__(self, media_type: str, accepted: Sequence[str]) -> None:
        super().__init__(f"cannot read a {media_type or 'untyped'} body here; send one of "
                         f"{', '.join(accepted)}")
        self.media_type = media_type


class NotProjected(ApiError):
    """A `wait_for` position on a topic the read models do not follow."""

    status = 400

    def __init__(self, token: str, topics: Sequence[str]) -> None:
        super().__init__(f"{token} is on a topic the read models do not follow; wait_for takes "
                         f"positions on {', '.join(topics)} (as command responses give them)")
        self.token = token
