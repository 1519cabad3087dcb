"""An outside producer and consumer of Bend's topics, as docs/outside-producers.md describes it:
plain confluent-kafka and fastavro with the committed `.avsc` files. It imports nothing from
Bend, on purpose: what it needs must be in the docs and the schemas."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
MAGIC = b"\xc3\x01"


class Schemas:
    """Every current record schema by name and by single-object fingerprint."""

    def __init__(self, folder: Path = SCHEMAS) -> None:
        envelope = json.loads((folder / "Envelope.avsc").read_text())
        self.by_name: dict[str, Any] = {}
        self.by_fingerprint: dict[bytes, Any] = {}
        for path in sorted(folder.glob("*.avsc")):
            if path.stem == "Envelope":
                continue
            schema = json.loads(path.read_text())
            # The fingerprint is of the schema with the shared Envelope written in at its use.
            for f in schema["fields"]:
                if f["type"] == "bend.Envelope":
                    f["type"] = envelope
            parsed = parse_schema(schema, named_schemas={})
            canonical = to_parsing_canonical_form(parsed)
            fp = int(fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")
            self.by_name[path.stem] = (parsed, fp)
            self.by_fingerprint[fp] = parsed

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """`record` in Avro single-object encoding: C3 01, the fingerprint, the body."""
        parsed, fp = self.by_name[name]
        out = io.BytesIO()
        out.write(MAGIC + fp)
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any] | None:
        """The record in single-object-encoded `data`, or None for a schema not known here."""
        if data[:2] != MAGIC:
            return None
        parsed = self.by_fingerprint.get(data[2:10])
        if parsed is None:
            return None
        return fastavro.schemaless_reader(io.BytesIO(data[10:]), parsed, None)


def start_run(bootstrap: str, prefix: str, schemas: Schemas, workflow_id: str,
              run_input: Any, project: str = "default") -> str:
    """Produce a StartRun naming a registered workflow (the orchestrator pins its definition)
    with confluent-kafka's default partitioner; the run id."""
    run_id = str(uuid.uuid4())
    envelope = {"event_id": str(uuid.uuid4()), "event_type": "StartRun", "run_id": run_id,
                "workflow_id": workflow_id, "workflow_version": 0, "seq": 0,
                "occurred_at": int(time.time() * 1_000_000), "causation_id": None,
                "correlation_id": run_id, "tenant": "default", "project": project}
    value = schemas.encode("StartRun", {"envelope": envelope, "input": json.dumps(run_input),
                                        "definition": "null", "seed": "null"})
    producer = Producer({"bootstrap.servers": bootstrap})  # default partitioner: CRC32
    producer.produce(f"{prefix}.commands", key=run_id.encode(), value=value)
    assert producer.flush(10) == 0
    return run_id


def signal_run(bootstrap: str, prefix: str, schemas: Schemas, run_id: str, workflow_id: str,
               name: str, payload: Any, project: str = "default") -> None:
    """Produce a SignalRun for `run_id` (keyed by it) with confluent-kafka's defaults."""
    envelope = {"event_id": str(uuid.uuid4()), "event_type": "SignalRun", "run_id": run_id,
                "workflow_id": workflow_id, "workflow_version": 0, "seq": 0,
                "occurred_at": int(time.time() * 1_000_000), "causation_id": None,
                "correlation_id": run_id, "tenant": "default", "project": project}
    value = schemas.encode("SignalRun", {"envelope": envelope, "name": name,
                                         "payload": json.dumps(payload), "sent_by": "outside"})
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(f"{prefix}.commands", key=run_id.encode(), value=value)
    assert producer.flush(10) == 0


def follow_run(bootstrap: str, prefix: str, schemas: Schemas, run_id: str,
               timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The run's events from the run log, until it ends (or `timeout_s`)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"outside-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([f"{prefix}.run-events"])
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.key() != run_id.encode():
                continue
            record = schemas.decode(message.value())
            if record is None:
                continue
            events.append(record)
            if record["envelope"]["event_type"] in ("RunCompleted", "RunFailed", "RunCancelled"):
                break
    finally:
        consumer.close()
    return events
