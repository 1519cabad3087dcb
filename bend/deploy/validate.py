"""Validate rendered objects offline: Kubernetes kinds against the JSON schemas that the
`kubernetes-validate` package ships (strict: unknown fields are errors, as `kubectl apply`
reports them), custom resources against the CRD schemas vendored in deploy/schemas/crds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from bend.deploy.errors import DeployError
from bend.settings import PROJECT_ROOT

__all__ = ["KUBERNETES_VERSION", "SCHEMAS", "Validator", "object_name"]

KUBERNETES_VERSION = "1.33.0"  # the oldest minor Bend's manifests are checked against
SCHEMAS = PROJECT_ROOT / "deploy" / "schemas"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def object_name(obj: dict[str, Any]) -> str:
    """`Kind/name` of an object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def _strict(node: Any) -> Any:
    """A CRD schema where an object with listed properties rejects other fields, as the API
    server's strict field validation does (unless it preserves unknown fields)."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def _kafka_trigger_schema(schemas: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((schemas / "keda-kafka-trigger.json").read_text())
    return schema


class Validator:
    """Checks objects against their kind's schema; `problems` lists every violation found."""

    def __init__(self, kubernetes_version: str = KUBERNETES_VERSION,
                 schemas: Path = SCHEMAS) -> None:
        try:
            import kubernetes_validate
        except ImportError as err:  # a dev dependency
            raise DeployError("validating needs the kubernetes-validate package: "
                              "pip install -e '.[dev]'") from err
        self._k8s_dir = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
                         / f"v{kubernetes_version}-local-strict")
        if not self._k8s_dir.is_dir():
            raise DeployError(f"kubernetes-validate has no schemas for {kubernetes_version} "
                              f"(looked in {self._k8s_dir})")
        definitions = json.loads((self._k8s_dir / "_definitions.json").read_text())
        self._registry: Registry = Registry().with_resource(
            "/api/_definitions.json", Resource.from_contents(definitions))
        self._object_meta = {"$ref": f"/api/_definitions.json#/$defs/{_OBJECT_META}"}
        self._schemas = schemas
        self._crds = schemas / "crds"

    def problems(self, objects: Iterable[dict[str, Any]]) -> list[str]:
        """`Kind/name: path: message` for every schema violation of every object."""
        out = []
        for obj in objects:
            for error in self._errors(obj):
                path = ".".join(str(p) for p in error.absolute_path) or "(root)"
                out.append(f"{object_name(obj)}: {path}: {error.message}")
        return out

    def _errors(self, obj: dict[str, Any]) -> Iterator[jsonschema.ValidationError]:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        validator = self._validator(api_version, kind)
        if validator is None:
            yield jsonschema.ValidationError(
                f"no schema for {kind} {api_version}: not a Kubernetes {KUBERNETES_VERSION} "
                "kind, nor a vendored CRD (deploy/schemas/README.md)")
            return
        yield from validator.iter_errors(obj)
        if kind == "ScaledObject":
            yield from self._kafka_triggers(obj)

    def _kafka_triggers(self, obj: dict[str, Any]) -> Iterator[jsonschema.ValidationError]:
        """KEDA's Kafka scaler metadata, which the CRD types only as a map of strings."""
        schema = _kafka_trigger_schema(self._schemas)
        for i, trigger in enumerate(obj.get("spec", {}).get("triggers", [])):
            if trigger.get("type") != "kafka":
                continue
            for error in jsonschema.Draft202012Validator(schema).iter_errors(
                    trigger.get("metadata", {})):
                error.path.extendleft(["spec", "triggers", i, "metadata"][::-1])
                yield error

    @cache  # noqa: B019 - one Validator per test session; schemas are immutable
    def _validator(self, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
        group, _, version = api_version.rpartition("/")
        crd = self._crds / f"{group}_{version}_{kind.lower()}.json"
        if group and crd.exists():
            schema = _strict(json.loads(crd.read_text()))
            schema["properties"]["metadata"] = self._object_meta
            schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind",
                                         "metadata"})
            return jsonschema.Draft202012Validator(schema, registry=self._registry)
        short = group.split(".")[0] if group else "core"
        name = f"{kind.lower()}-{short}-{version}.json" if group else \
            f"{kind.lower()}-{version}.json"
        path = self._k8s_dir / name
        if not path.exists():
            return None
        return jsonschema.Draft202012Validator(json.loads(path.read_text()),
                                               registry=self._registry)
