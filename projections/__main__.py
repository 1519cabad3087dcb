"""`python -m projections run | rebuild SCHEMA | lag`."""

from bend.log import configure_logging
from bend.settings import get_settings
from projections.cli import projector

if __name__ == "__main__":
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)
    projector()
