"""`python -m streams.notifications run`: the notifier, with its ops server, until stopped."""

from __future__ import annotations

import sys

from streams.follow import serve
from streams.notifications.notifier import Notifier

if __name__ == "__main__":
    raise SystemExit(serve(Notifier, "streams.notifications", sys.argv[1:]))
