"""The root of Bend's typed errors; every error says what happened and what to do, and its own
HTTP status (`status`, 500 unless it says otherwise): the API and the UI read only that."""

from __future__ import annotations


class BendError(Exception):
    """Root of every error Bend raises on purpose."""

    code: str = "bend_error"
    status: int = 500  # the HTTP status the API and the UI answer it with
    retry_after: str | None = None  # a Retry-After header's seconds, when asking again helps

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
