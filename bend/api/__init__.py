"""The REST API (FastAPI): commands produce records to Kafka, queries read the projections."""

from bend.api.app import create_app

__all__ = ["create_app"]
