"""Errors in commands that do not go through the API: a BendError is click's one-line error."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from bend.core.errors import BendError

__all__ = ["clear_errors"]


def clear_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a BendError into click's one-line error and exit code 1, whoever runs the command."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BendError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper
