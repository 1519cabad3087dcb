"""`python -m bend.archive run | status`."""

from bend.archive.cli import archive
from bend.log import configure_logging
from bend.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    archive()
