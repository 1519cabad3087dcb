"""Bend: an event-sourced orchestrator for AI-agent workflows on Kafka."""
__version__ = "0.1.0"
