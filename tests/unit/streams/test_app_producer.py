"""The workers' Kafka producer: acks=all and idempotent, so a retried batch is written once."""

from __future__ import annotations

from pathlib import Path

from bend.settings import DevSettings, Settings
from streams.app import create_app


async def test_the_workers_producer_waits_for_all_replicas_and_is_idempotent(
        tmp_path: Path) -> None:
    app = create_app("orchestrator", Settings(dev=DevSettings(state_dir=tmp_path)))
    producer = app.producer._new_producer()  # noqa: SLF001 - the aiokafka producer Faust makes
    assert producer._txn_manager is not None  # noqa: SLF001 - aiokafka's idempotence state
    assert producer._sender._acks == -1  # noqa: SLF001
