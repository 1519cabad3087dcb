"""Tracing on for one test, into an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bend.settings import Settings
from bend.tracing import configure_tracing, shutdown_tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this test makes (tracing is off again afterwards)."""
    exporter = InMemorySpanExporter()
    assert configure_tracing(Settings(), "test", exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()
