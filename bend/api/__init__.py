"""The REST API (FastAPI): commands produce records to Kafka, queries read the projections."""

from bend.api.app import create_api

__all__ = ["create_api"]
