"""`python -m streams.notifications run`: the notifier, until stopped."""

from __future__ import annotations

import asyncio
import sys

from bend.log import configure_logging
from bend.settings import get_settings
from streams.notifications.notifier import Notifier


def main(argv: list[str]) -> int:
    """Run the notifier (`run`), until SIGINT/SIGTERM."""
    if argv[:1] != ["run"]:
        print("usage: python -m streams.notifications run", file=sys.stderr)
        return 2
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    try:
        asyncio.run(Notifier(settings).run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
