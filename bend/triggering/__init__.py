"""The records that start runs and record trigger events, shared by the API and the workers."""

__all__ = ["events", "records"]
