"""Released schema versions (schemas/avro/history/) and recording a new one after a change.

Each type's versions live in `history/<Name>/v<N>.avsc`, fully expanded (Envelope inlined),
and `history/lock.json` lists each type's latest version and fingerprint. A fresh clone thus
holds everything a compatibility check needs. `python -m bend.contracts.history record` records
a changed schema as a new version, after checking the current one can read every old one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bend.contracts.compat import incompatibilities
from bend.contracts.errors import IncompatibleSchema
from bend.contracts.schemas import (
    SCHEMA_DIR, SchemaInfo, current_schemas, fingerprint_of, significant,
)

__all__ = [
    "HISTORY_DIR", "RecordedVersion", "check_compatible", "main", "problems_in", "record",
    "recorded", "unrecorded", "writer_schemas",
]

HISTORY_DIR = SCHEMA_DIR / "history"


@dataclass(frozen=True, slots=True)
class RecordedVersion:
    """One released version of a type's schema."""

    name: str
    version: int
    expanded: dict[str, Any]
    fingerprint: int


def recorded(history_dir: Path = HISTORY_DIR) -> dict[str, list[RecordedVersion]]:
    """Every recorded version of every type, oldest first."""
    out: dict[str, list[RecordedVersion]] = {}
    if not history_dir.is_dir():
        return out
    for folder in sorted(p for p in history_dir.iterdir() if p.is_dir()):
        versions = []
        for path in folder.glob("v*.avsc"):
            expanded = json.loads(path.read_text())
            versions.append(RecordedVersion(folder.name, int(path.stem[1:]), expanded,
                                            fingerprint_of(expanded)))
        out[folder.name] = sorted(versions, key=lambda v: v.version)
    return out


@lru_cache(maxsize=1)
def writer_schemas() -> Mapping[int, tuple[str, dict[str, Any]]]:
    """Fingerprint -> (type name, expanded schema) for every recorded and current schema."""
    table: dict[int, tuple[str, dict[str, Any]]] = {}
    for name, versions in recorded().items():
        for v in versions:
            table[v.fingerprint] = (name, v.expanded)
    for name, info in current_schemas().items():
        table[info.fingerprint] = (name, info.expanded)
    return table


def unrecorded(current: Mapping[str, SchemaInfo],
               history: Mapping[str, Sequence[RecordedVersion]]) -> list[str]:
    """Types whose current schema differs (docs aside) from their latest recorded version."""
    return [
        name for name, info in current.items()
        if not history.get(name)
        or significant(history[name][-1].expanded) != significant(info.expanded)
    ]


def check_compatible(info: SchemaInfo, versions: Sequence[RecordedVersion]) -> list[str]:
    """Why the current schema cannot read data of some recorded version; empty when it can."""
    reasons = []
    for v in versions:
        reasons += [f"v{v.version}: {r}" for r in incompatibilities(info.expanded, v.expanded)]
    return reasons


def record(names: Sequence[str] = (), schema_dir: Path = SCHEMA_DIR,
           history_dir: Path = HISTORY_DIR) -> list[str]:
    """Record each changed schema (or only `names`) as a new version; returns what was written.

    Refuses, writing nothing, when any changed schema cannot read its recorded versions.
    """
    from bend.contracts.schemas import load_folder

    current = load_folder(schema_dir)
    history = recorded(history_dir)
    changed = [n for n in unrecorded(current, history) if not names or n in names]
    for name in changed:
        reasons = check_compatible(current[name], history.get(name, ()))
        if reasons:
            raise IncompatibleSchema(name, reasons)
    written = []
    for name in changed:
        version = history[name][-1].version + 1 if history.get(name) else 1
        path = history_dir / name / f"v{version}.avsc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current[name].expanded, indent=2, ensure_ascii=False) + "\n")
        written.append(str(path.relative_to(history_dir.parent)))
    if written:
        _write_lock(sorted(current), history_dir)
    return written


def _write_lock(names: Sequence[str], history_dir: Path) -> None:
    history = recorded(history_dir)
    lock = {
        name: {"version": history[name][-1].version,
               "fingerprint": f"{history[name][-1].fingerprint:016x}"}
        for name in names if name in history
    }
    (history_dir / "lock.json").write_text(json.dumps(lock, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """`record [NAME...]` records changed schemas; `check` lists unrecorded or broken ones.

    `--schemas DIR` works on another schema folder (its history in DIR/history).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    schema_dir = SCHEMA_DIR
    if "--schemas" in args:
        at = args.index("--schemas")
        schema_dir = Path(args[at + 1])
        del args[at:at + 2]
    command, names = (args[0], args[1:]) if args else ("check", [])
    history_dir = schema_dir / "history"
    if command == "record":
        try:
            written = record(names, schema_dir, history_dir)
        except IncompatibleSchema as err:
            print(f"refused: {err}", file=sys.stderr)
            return 1
        print("\n".join(f"recorded {w}" for w in written) or "nothing changed")
        return 0
    if command == "check":
        problems = problems_in(schema_dir, history_dir)
        print("\n".join(problems) or "every schema is recorded and reads all its versions")
        return 1 if problems else 0
    print("usage: python -m bend.contracts.history [--schemas DIR] record [NAME...] | check",
          file=sys.stderr)
    return 2


def problems_in(schema_dir: Path = SCHEMA_DIR, history_dir: Path = HISTORY_DIR) -> list[str]:
    """Unrecorded changes, broken compatibility and a stale lock file, one line each."""
    from bend.contracts.schemas import load_folder

    current = load_folder(schema_dir)
    history = recorded(history_dir)
    problems = [f"{n}: changed without a recorded version; run `python -m "
                "bend.contracts.history record`" for n in unrecorded(current, history)]
    for name, info in current.items():
        problems += [f"{name}: {r}" for r in check_compatible(info, history.get(name, ()))]
    lock_path = history_dir / "lock.json"
    lock = json.loads(lock_path.read_text()) if lock_path.exists() else {}
    for name, versions in history.items():
        want = {"version": versions[-1].version, "fingerprint": f"{versions[-1].fingerprint:016x}"}
        if name in current and lock.get(name) != want:
            problems.append(f"{name}: lock.json says {lock.get(name)}, history has {want}")
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
