"""Projection throughput, bounded: a few thousand records through the projector and a rebuild.

The floor is far below what a quiet 2-core machine does (about 4,000 records/s for the
projector, 5,000 for a rebuild; `python -m bench.projector_throughput` for the full bench), so
the test catches a collapse (a round trip per record, a batch per record), not noise.
"""

from __future__ import annotations

import pytest

from bench.projector_throughput import measure
from bend.server.testing import drop_isolated, isolated_settings
from bend.settings import get_settings
from tests.integration.test_projections import READ_MODELS, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FLOOR_RECORDS_PER_S = 800


async def test_the_projector_and_a_rebuild_apply_thousands_of_records_per_second_and_agree(
        kafka_bootstrap: str, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = isolated_settings(get_settings())
    try:
        result = await measure(settings, runs=200, steps=4, max_batch=1000, timeout_s=60)
        # Applied at speed, live and rebuilt agree table by table.
        live = await snapshot(settings, settings.database.schema_name)
        rebuilt = await snapshot(settings, f"{settings.kafka.topic_prefix}_rebuilt")
    finally:
        await drop_isolated(settings)
    for table in READ_MODELS:
        assert live[table] == rebuilt[table], f"{table} differs from its rebuild"
    assert live["runs"], "nothing was projected"
    with capsys.disabled():
        print(f"\nprojection throughput: {result}")
    assert result["records"] > 5000
    assert result["projector_records_per_s"] > FLOOR_RECORDS_PER_S, result
    assert result["rebuild_records_per_s"] > FLOOR_RECORDS_PER_S, result
