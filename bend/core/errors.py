"""The root of Bend's typed errors; every error says what happened and what to do, and its own
HTTP status (`status`, 500 unless it says otherwise): the API and the UI read only that.

An error's `code` (the `error` of the API's problem answers) is its class name in snake case
(`UnknownRun` -> `unknown_run`) unless the class sets one."""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def code_of(name: str) -> str:
    """A class name's error code: `UnknownRun` -> `unknown_run`."""
    return _WORD.sub("_", name).lower()


class BendError(Exception):
    """Root of every error Bend raises on purpose."""

    code: str = "bend_error"
    status: int = 500  # the HTTP status the API and the UI answer it with
    retry_after: str | None = None  # a Retry-After header's seconds, when asking again helps

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = code_of(cls.__name__)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
