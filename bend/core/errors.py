"""The root of Bend's typed errors; every error says what happened and what to do."""

from __future__ import annotations


class BendError(Exception):
    """Root of every error Bend raises on purpose."""

    code: str = "bend_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
