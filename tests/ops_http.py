"""GET against a process's ops server or the API from a test: the status and the body, also
for an error status (urllib raises on those)."""

from __future__ import annotations

import urllib.error
import urllib.request

__all__ = ["http_get"]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """The answer's status and text (a test's servers listen on 127.0.0.1 only)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
