"""A local Bend engine: topics under a prefix, worker processes, the scripted model server.

The demo, the end-to-end tests and the benchmarks all run Bend this way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bend.contracts.admin import ensure_topics
from bend.core.commands import CancelRun, StartRun
from bend.core.definitions import definition_json, parse_definition
from bend.devstack.llm_server import LlmServer, start_llm_server
from bend.devstack.workers import Workers
from bend.settings import Settings, get_settings


@dataclass
class Engine:
    """Settings, worker processes and the scripted model server of one test module."""

    settings: Settings
    workers: Workers
    llm: LlmServer
    env: dict[str, str] = field(default_factory=dict)

    def start_run(self, definition: Any, input: Any, *, workflow_id: str | None = None,
                  run_id: str | None = None) -> StartRun:
        """A StartRun command for `definition` (a dict or YAML-loaded mapping)."""
        defn = parse_definition(definition)
        run_id = run_id or str(uuid.uuid4())
        return StartRun(
            event_id=str(uuid.uuid4()), run_id=run_id,
            workflow_id=workflow_id or f"wf-{defn.name}", workflow_version=1,
            occurred_at=datetime.now(timezone.utc), correlation_id=run_id,
            definition=definition_json(defn), input=input,
        )

    def cancel_run(self, start: StartRun, reason: str = "test") -> CancelRun:
        """A CancelRun command for the run `start` began."""
        return CancelRun(event_id=str(uuid.uuid4()), run_id=start.run_id,
                         workflow_id=start.workflow_id, workflow_version=start.workflow_version,
                         occurred_at=datetime.now(timezone.utc), reason=reason,
                         requested_by="test")


@contextmanager
def running_engine(executors: int = 1, orchestrators: int = 1, partitions: int | None = None,
                   prefix: str | None = None, llm_port: int = 0,
                   schema_registry_url: str | None = None,
                   kafka: Mapping[str, Any] | None = None) -> Iterator[Engine]:
    """Topics under `prefix` (default: a fresh one), the scripted model, worker processes.

    With `schema_registry_url`, the workers and the engine's settings use that registry's
    wire format (the environment's `BEND_KAFKA__SCHEMA_REGISTRY_URL` otherwise). `kafka`
    overrides fields of the Kafka settings (`{"bootstrap": ..., "replication_factor": 3}`) for
    the engine and, as BEND_KAFKA__<FIELD> variables, for its worker processes."""
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}"
    env = {"BEND_KAFKA__TOPIC_PREFIX": prefix, "BEND_SECRET_LLM_API_KEY": "test-key"}
    if partitions:
        env["BEND_KAFKA__DEFAULT_PARTITIONS"] = str(partitions)
    overrides = dict(kafka or {})
    if schema_registry_url:
        overrides["schema_registry_url"] = schema_registry_url
    for name, value in overrides.items():
        env[f"BEND_KAFKA__{name.upper()}"] = str(value)
    base = get_settings()
    kafka_settings = base.kafka.model_validate({
        **base.kafka.model_dump(), **overrides, "topic_prefix": prefix,
        "default_partitions": partitions or base.kafka.default_partitions})
    settings = base.model_copy(update={"kafka": kafka_settings})
    ensure_topics(settings)
    llm = start_llm_server(llm_port)
    workers = Workers(settings, env=env, log_dir=settings.dev.state_dir / "logs" / prefix)
    try:
        for _ in range(orchestrators):
            workers.start("orchestrator", wait=False)
        for _ in range(executors):
            workers.start("executor", wait=False)
        if orchestrators:
            workers.wait_ready("orchestrator")
        if executors:
            workers.wait_ready("executor")
        yield Engine(settings, workers, llm, env)
    finally:
        workers.stop()
        llm.stop()
