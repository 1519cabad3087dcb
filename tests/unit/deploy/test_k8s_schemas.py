"""Every rendered object passes the Kubernetes or CRD schema of its kind, and the validator
really rejects what a cluster would reject."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bend.deploy.validate import Validator

from .conftest import OVERLAYS, Rendered


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_each_overlay_passes_its_schema(
        overlay: str, rendered: dict[str, Rendered], validator: Validator) -> None:
    objects = rendered[overlay].objects
    assert validator.problems(objects) == []
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "ScaledObject", "Kafka", "KafkaNodePool",
            "KafkaTopic"} <= kinds
    if overlay == "production":
        assert {"KafkaUser", "TriggerAuthentication"} <= kinds


def test_the_local_overlay_checks_a_cloudnative_pg_cluster(rendered: dict[str, Rendered]) -> None:
    assert rendered["local"].names("Cluster") == {"bend-postgres"}


def _mutated(rendered: Rendered, kind: str, change: Any) -> dict[str, Any]:
    obj = copy.deepcopy(rendered.of(kind)[0])
    change(obj)
    return obj


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]


MUTATIONS = {
    "a misspelt container field": (
        "Deployment", lambda o: _container(o).update(imagePullPolisy="Always"),
        "imagePullPolisy"),
    "a probe port of the wrong type": (
        "Deployment", lambda o: _container(o)["livenessProbe"]["httpGet"].update(port=[1]),
        "livenessProbe"),
    "a misspelt Kafka field": (
        "Kafka", lambda o: o["spec"]["kafka"].update(listners=[]), "listners"),
    "a Kafka listener without a port": (
        "Kafka", lambda o: o["spec"]["kafka"]["listeners"][0].pop("port"), "port"),
    "a node pool role Strimzi does not know": (
        "KafkaNodePool", lambda o: o["spec"].update(roles=["zookeeper"]), "zookeeper"),
    "topic partitions as words": (
        "KafkaTopic", lambda o: o["spec"].update(partitions="twelve"), "twelve"),
    "a misspelt KEDA scaler key": (
        "ScaledObject", lambda o: o["spec"]["triggers"][0]["metadata"].update(lagTreshold="5"),
        "lagTreshold"),
    "a KEDA offset policy the scaler rejects": (
        "ScaledObject",
        lambda o: o["spec"]["triggers"][0]["metadata"].update(offsetResetPolicy="smallest"),
        "smallest"),
    "a ScaledObject without a target": (
        "ScaledObject", lambda o: o["spec"].pop("scaleTargetRef"), "scaleTargetRef"),
    "a Postgres cluster size as text": (
        "Cluster", lambda o: o["spec"].update(instances="three"), "three"),
    "a bad label in metadata": (
        "ConfigMap", lambda o: o["metadata"].update(labels={"a": 1}), "metadata"),
}


@pytest.mark.parametrize("what", MUTATIONS)
def test_the_validator_rejects(what: str, rendered: dict[str, Rendered],
                               validator: Validator) -> None:
    kind, change, mention = MUTATIONS[what]
    problems = validator.problems([_mutated(rendered["local"], kind, change)])
    assert problems, f"{what} passed validation"
    assert any(mention in p for p in problems), problems


def test_a_kind_with_no_schema_is_a_problem(validator: Validator) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validator.problems([obj]) == [
        "Widget/w: (root): no schema for Widget example.com/v1: not a Kubernetes 1.33.0 kind, "
        "nor a vendored CRD (deploy/schemas/README.md)"]


PRODUCTION_MUTATIONS = {
    "an ACL operation Kafka does not know": (
        "KafkaUser",
        lambda o: o["spec"]["authorization"]["acls"][0].update(operations=["Wirte"]), "Wirte"),
    "a KafkaUser authenticated by a mechanism Strimzi lacks": (
        "KafkaUser", lambda o: o["spec"]["authentication"].update(type="scram-sha-1"),
        "scram-sha-1"),
    "a TriggerAuthentication secret reference without its key": (
        "TriggerAuthentication", lambda o: o["spec"]["secretTargetRef"][0].pop("key"), "key"),
}


@pytest.mark.parametrize("what", PRODUCTION_MUTATIONS)
def test_the_validator_rejects_in_the_production_overlay(
        what: str, rendered: dict[str, Rendered], validator: Validator) -> None:
    kind, change, mention = PRODUCTION_MUTATIONS[what]
    problems = validator.problems([_mutated(rendered["production"], kind, change)])
    assert any(mention in p for p in problems), problems
