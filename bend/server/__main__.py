"""`python -m bend.server serve`."""

from bend.server.cli import api
from bend.log import configure_logging
from bend.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    api()
