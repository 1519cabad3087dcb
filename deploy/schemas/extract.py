"""Vendor a CRD's `openAPIV3Schema` as compact JSON (descriptions dropped, nothing else changed).

    python deploy/schemas/extract.py CRD.yaml [CRD.yaml ...]

writes `deploy/schemas/crds/<group>_<version>_<kind>.json` for the storage version of each
CRD (the one Bend's manifests use). See deploy/schemas/README.md for where the CRDs come from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent / "crds"


def _strip(node: Any) -> Any:
    """The schema without `description` texts (they are most of its size)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def extract(crd_path: Path) -> list[Path]:
    """Write the storage version's JSON schema of each CRD at `crd_path`; return the paths."""
    written = []
    for crd in yaml.safe_load_all(crd_path.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("storage", False):
                continue
            schema = _strip(version["schema"]["openAPIV3Schema"])
            name = f"{spec['group']}_{version['name']}_{spec['names']['kind'].lower()}.json"
            path = OUT / name
            path.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for arg in sys.argv[1:]:
        for path in extract(Path(arg)):
            print(f"{arg} -> {path.relative_to(OUT.parent.parent.parent)} "
                  f"({path.stat().st_size} bytes)")
