"""The .avsc files follow the catalogue, and every change is recorded and backward compatible."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import typing
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from bend.contracts.codec import RECORD_TYPES
from bend.contracts.datum import Shape
from bend.contracts.errors import IncompatibleSchema
from bend.contracts.history import (
    HISTORY_DIR, main, problems_in, record, recorded, unrecorded,
)
from bend.contracts.schemas import SCHEMA_DIR, current_schemas, parse
from bend.core.commands import COMMAND_TYPES
from bend.core.events import ENVELOPE_FIELDS, EVENT_TYPES, json_fields

SCHEMAS = current_schemas()
HISTORY = recorded()


def test_every_catalogued_type_has_one_schema_file_named_as_the_class() -> None:
    files = {p.stem for p in SCHEMA_DIR.glob("*.avsc")}
    assert files == set(RECORD_TYPES) | {"Envelope"}
    assert set(SCHEMAS) == set(RECORD_TYPES)


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_a_schema_has_its_namespace_and_the_envelope_first(name: str) -> None:
    raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    assert raw["namespace"] == ("bend.events" if name in EVENT_TYPES else "bend.commands")
    assert name in EVENT_TYPES or name in COMMAND_TYPES
    assert raw["fields"][0]["name"] == "envelope"
    assert raw["fields"][0]["type"] == "bend.Envelope"


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_schema_fields_follow_the_dataclass_one_to_one(name: str) -> None:
    cls, info = RECORD_TYPES[name], SCHEMAS[name]
    Shape.of(cls, info)  # raises on any difference in names or order
    hints = typing.get_type_hints(cls)
    by_name = {f["name"]: f for f in info.expanded["fields"]}
    by_name |= {f["name"]: f for f in by_name.pop("envelope")["type"]["fields"]}
    for field in fields(cls):
        avro = by_name[field.name]
        optional = type(None) in typing.get_args(hints[field.name])
        if field.name in json_fields(cls):
            assert avro["type"] == "string" and "JSON text" in avro["doc"], field.name
        elif optional:
            assert avro["type"][0] == "null" and avro["default"] is None, field.name
        if datetime in (hints[field.name], *typing.get_args(hints[field.name])):
            inner = avro["type"][-1] if optional else avro["type"]
            assert inner == {"type": "long", "logicalType": "timestamp-micros"}, field.name


def test_the_envelope_carries_the_core_fields_and_the_event_type() -> None:
    envelope = json.loads((SCHEMA_DIR / "Envelope.avsc").read_text())
    assert envelope["name"] == "Envelope" and envelope["namespace"] == "bend"
    names = [f["name"] for f in envelope["fields"]]
    assert names == [ENVELOPE_FIELDS[0], "event_type", *ENVELOPE_FIELDS[1:]]


def test_every_record_and_field_has_a_doc() -> None:
    missing = []

    def walk(schema: Any, where: str) -> None:
        if isinstance(schema, dict) and schema.get("type") == "record":
            if not schema.get("doc"):
                missing.append(where)
            for f in schema["fields"]:
                if not f.get("doc"):
                    missing.append(f"{where}.{f['name']}")
                walk(f["type"], f"{where}.{f['name']}")

    for name, info in SCHEMAS.items():
        walk(info.expanded, name)
    assert missing == []


def test_no_schema_changed_without_a_recorded_version() -> None:
    assert unrecorded(SCHEMAS, HISTORY) == [], (
        "run `python -m bend.contracts.history record` and commit schemas/avro/history/")


def test_the_history_is_complete_and_the_lock_file_matches_it() -> None:
    assert problems_in() == []
    lock = json.loads((HISTORY_DIR / "lock.json").read_text())
    for name, info in SCHEMAS.items():
        assert lock[name]["fingerprint"] == f"{info.fingerprint:016x}"
        assert lock[name]["version"] == HISTORY[name][-1].version


VERSIONS = [(name, v) for name, versions in sorted(HISTORY.items()) for v in versions
            if name in SCHEMAS]


@pytest.mark.parametrize("name, version", VERSIONS,
                         ids=[f"{n}-v{v.version}" for n, v in VERSIONS])
def test_the_current_schema_reads_data_of_every_recorded_version(name: str, version: Any) -> None:
    writer, reader = parse(version.expanded), SCHEMAS[name].parsed
    for datum in generate_many(writer, 20):
        body = io.BytesIO()
        schemaless_writer(body, writer, datum)
        body.seek(0)
        schemaless_reader(body, writer, reader)
        assert body.tell() == len(body.getvalue())


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A copy of schemas/avro (with its history) to change."""
    shutil.copytree(SCHEMA_DIR, tmp_path / "avro")
    return tmp_path / "avro"


def _edit(folder: Path, name: str, change: Any) -> None:
    path = folder / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def test_a_compatible_change_is_recorded_as_the_next_version(folder: Path) -> None:
    _edit(folder, "StepStarted", lambda s: s["fields"].append(
        {"name": "host", "type": "string", "default": "", "doc": "Where it ran."}))
    assert problems_in(folder, folder / "history") != []
    written = record(schema_dir=folder, history_dir=folder / "history")
    assert written == ["history/StepStarted/v2.avsc"]
    lock = json.loads((folder / "history" / "lock.json").read_text())
    assert lock["StepStarted"]["version"] == 2
    assert problems_in(folder, folder / "history") == []
    assert record(schema_dir=folder, history_dir=folder / "history") == []


def test_a_doc_only_edit_needs_no_new_version(folder: Path) -> None:
    _edit(folder, "StepStarted", lambda s: s.update(doc="Reworded."))
    assert problems_in(folder, folder / "history") == []


def test_an_incompatible_change_is_refused_with_the_reason_and_nothing_written(
    folder: Path,
) -> None:
    _edit(folder, "StepStarted", lambda s: s["fields"].append(
        {"name": "host", "type": "string", "doc": "Where it ran."}))
    before = sorted(p.name for p in (folder / "history" / "StepStarted").iterdir())
    with pytest.raises(IncompatibleSchema, match="StepStarted.host: field added without"):
        record(schema_dir=folder, history_dir=folder / "history")
    assert sorted(p.name for p in (folder / "history" / "StepStarted").iterdir()) == before
    assert main(["--schemas", str(folder), "check"]) == 1


def test_the_record_command_refuses_a_narrowed_type_and_exits_non_zero(folder: Path) -> None:
    def narrow(schema: dict[str, Any]) -> None:
        next(f for f in schema["fields"] if f["name"] == "attempt")["type"] = "int"

    _edit(folder, "StepStarted", narrow)
    done = subprocess.run(
        [sys.executable, "-m", "bend.contracts.history", "--schemas", str(folder), "record"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "refused" in done.stderr and "long cannot be read as int" in done.stderr
