"""Typed errors of the read side; each says what to do."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = [
    "DatabaseUnavailable", "InvalidSchemaName", "MigrationChanged", "ProjectionError",
    "ProjectionBehind",
]


class ProjectionError(BendError):
    """Root of the read side's errors."""


class DatabaseUnavailable(ProjectionError):
    """Postgres did not answer."""

    status = 503
    retry_after = "5"  # seconds a client waits before asking again

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(
            f"Postgres at {where} failed: {detail}; start the local one with `bend dev up`, "
            "or point BEND_DATABASE_URL at a running server, then retry"
        )
        self.where = where


class InvalidSchemaName(ProjectionError):
    """A Postgres schema name that is not a plain lower-case identifier."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is not a usable schema name; use lower-case letters, digits and _, "
            "starting with a letter or _, at most 63 characters (BEND_DATABASE__SCHEMA_NAME)"
        )
        self.name = name


class MigrationChanged(ProjectionError):
    """An applied migration's file differs from what was applied."""

    def __init__(self, version: int, name: str, schema: str) -> None:
        super().__init__(
            f"migration {version:04d} ({name}) was applied to schema {schema} with other text; "
            "never edit an applied migration: restore it and add a new numbered file, or "
            "rebuild the read models into a fresh schema (`python -m projections rebuild`)"
        )
        self.version = version
        self.schema = schema


class ProjectionBehind(ProjectionError):
    """The projection did not reach a log position in the time allowed."""

    status = 503
    retry_after = "1"  # seconds a client waits before asking again

    def __init__(self, token: str, waited_s: float, applied: int | None) -> None:
        at = "nothing yet" if applied is None or applied <= 0 else f"offset {applied - 1}"
        super().__init__(
            f"the read models had not applied {token} after {waited_s:g} s (they are at {at} "
            "of that partition); retry the request, and check that the projector runs "
            "(`python -m projections run`) and GET /api/ready for its lag"
        )
        self.token = token
        self.waited_s = waited_s
