"""The production overlay's Kafka logins and ACLs: a KafkaUser per role, each pod logging in as
its own, and each allowed only its job (the API may write commands but not the run log,
executors may not write workflows, only the orchestrator writes the run log, ...).

ACLs are evaluated as Kafka's authorizer does: a literal or prefix resource match, `All`
covering every operation, Read/Write/Delete/Alter implying Describe and AlterConfigs implying
DescribeConfigs; anything not allowed is denied (Strimzi's `simple` authorization).
"""

from __future__ import annotations

from typing import Any

import pytest

from bend.archive.archiver import Archiver, archived_topics
from bend.contracts.topics import TOPIC_KINDS
from streams.chaining import Chainer
from streams.notifications.notifier import Notifier

from .conftest import Rendered

IMPLIES = {"Describe": {"Read", "Write", "Delete", "Alter", "Describe"},
           "DescribeConfigs": {"AlterConfigs", "DescribeConfigs"}}
# Deployment -> the Kafka user it logs in as.
LOGINS = {"bend-api": "bend-api", "bend-orchestrator": "bend-orchestrator",
          "bend-executor": "bend-executor", "bend-scheduler": "bend-scheduler",
          "bend-projector": "bend-projector", "bend-archiver": "bend-archiver",
          "bend-notifier": "bend-notifier", "bend-chainer": "bend-chainer"}
# Who may write each topic, and who may read it (by topic kind; prefix `bend`).
WRITERS = {
    "commands": {"bend-api", "bend-orchestrator", "bend-executor", "bend-scheduler",
                 "bend-chainer"},
    "runs": {"bend-orchestrator"},
    "run_states": {"bend-orchestrator"},
    "tasks": {"bend-orchestrator"},
    "workflows": {"bend-api"},
    "triggers": {"bend-api", "bend-scheduler"},
    "dead_letters": {"bend-api", "bend-orchestrator", "bend-executor", "bend-projector"},
    "circuits": {"bend-executor"},
    "agent_tokens": {"bend-executor"},
    "timers": set(),
}
READERS = {
    "commands": {"bend-api", "bend-orchestrator", "bend-projector", "bend-archiver"},
    "runs": {"bend-api", "bend-orchestrator", "bend-projector", "bend-archiver",
             "bend-notifier", "bend-chainer"},
    "run_states": {"bend-orchestrator"},
    "tasks": {"bend-executor"},
    "workflows": {"bend-api", "bend-orchestrator", "bend-scheduler", "bend-projector"},
    "triggers": {"bend-api", "bend-scheduler", "bend-projector"},
    "dead_letters": {"bend-api", "bend-projector", "bend-archiver"},
    "circuits": {"bend-api"},
    "agent_tokens": {"bend-api"},
    "timers": set(),
}


def _topic(kind: str) -> str:
    return f"bend.{TOPIC_KINDS[kind]}"


def allowed(user: dict[str, Any], operation: str, rtype: str, name: str) -> bool:
    """Whether `user`'s ACLs allow `operation` on the resource (deny wins; default deny)."""
    verdicts = set()
    for acl in user["spec"]["authorization"]["acls"]:
        res = acl["resource"]
        if res["type"] != rtype:
            continue
        pattern = res.get("name", "")
        if not (name == pattern if res.get("patternType", "literal") == "literal"
                else name.startswith(pattern)):
            continue
        ops = set(acl.get("operations") or [acl["operation"]])
        if "All" in ops or operation in ops or ops & IMPLIES.get(operation, set()):
            verdicts.add(acl.get("type", "allow"))
    return "allow" in verdicts and "deny" not in verdicts


@pytest.fixture(scope="module")
def users(rendered: dict[str, Rendered]) -> dict[str, dict[str, Any]]:
    return {u["metadata"]["name"]: u for u in rendered["production"].of("KafkaUser")}


def test_every_deployment_logs_in_as_its_own_kafka_user(
        rendered: dict[str, Rendered], users: dict[str, dict[str, Any]]) -> None:
    r = rendered["production"]
    assert set(LOGINS) == r.names("Deployment")
    for name, user in LOGINS.items():
        (container,) = r.get("Deployment", name)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["BEND_KAFKA__SASL_USERNAME"]["value"] == user
        # Strimzi writes the user's generated password to a Secret named as the user.
        assert env["BEND_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == \
            {"name": user, "key": "password"}
        assert users[user]["spec"]["authentication"]["type"] == "scram-sha-512"
        assert users[user]["metadata"]["labels"]["strimzi.io/cluster"] == "bend-kafka"
    assert len(set(LOGINS.values())) == len(LOGINS)


def test_the_cluster_enforces_acls_and_runs_the_user_operator(
        rendered: dict[str, Rendered]) -> None:
    (kafka,) = rendered["production"].of("Kafka")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert "userOperator" in kafka["spec"]["entityOperator"]
    assert all(li["tls"] and li["authentication"]["type"] == "scram-sha-512"
               for li in kafka["spec"]["kafka"]["listeners"])  # no plaintext way in


def test_the_api_writes_commands_but_not_the_run_log_nor_tasks(
        users: dict[str, dict[str, Any]]) -> None:
    api = users["bend-api"]
    assert allowed(api, "Write", "topic", "bend.commands")
    for kind in ("runs", "tasks", "run_states", "circuits"):
        assert not allowed(api, "Write", "topic", _topic(kind)), kind


def test_executors_may_not_write_workflows_nor_the_run_log(
        users: dict[str, dict[str, Any]]) -> None:
    executor = users["bend-executor"]
    assert allowed(executor, "Read", "topic", "bend.tasks")
    assert allowed(executor, "Write", "topic", "bend.commands")
    for kind in ("workflows", "runs", "run_states", "tasks", "triggers"):
        assert not allowed(executor, "Write", "topic", _topic(kind)), kind


@pytest.mark.parametrize("kind", sorted(TOPIC_KINDS))
def test_each_topic_is_written_and_read_by_exactly_the_roles_that_need_it(
        kind: str, users: dict[str, dict[str, Any]]) -> None:
    topic = _topic(kind)
    assert {n for n, u in users.items() if allowed(u, "Write", "topic", topic)} == WRITERS[kind]
    assert {n for n, u in users.items() if allowed(u, "Read", "topic", topic)} == READERS[kind]


def test_no_user_may_create_delete_or_reconfigure_topics_or_touch_the_cluster(
        users: dict[str, dict[str, Any]]) -> None:
    for name, user in users.items():
        for kind in TOPIC_KINDS:
            for op in ("Create", "Delete", "Alter", "AlterConfigs"):
                assert not allowed(user, op, "topic", _topic(kind)), (name, op, kind)
        for op in ("Create", "Alter", "AlterConfigs", "ClusterAction", "IdempotentWrite"):
            assert not allowed(user, op, "cluster", "kafka-cluster"), (name, op)
        assert not allowed(user, "Read", "topic", "__consumer_offsets"), name


def test_each_role_may_use_the_consumer_groups_its_code_joins(
        rendered: dict[str, Rendered], users: dict[str, dict[str, Any]]) -> None:
    prefix = rendered["production"].settings().kafka.topic_prefix
    # streams/app.py names a worker role's group `<prefix>-<role>`; the projector's is its own.
    joins = {"bend-orchestrator": [f"{prefix}-orchestrator"],
             "bend-executor": [f"{prefix}-executor"],
             "bend-scheduler": [f"{prefix}-triggers", f"{prefix}-trigger-abc"],  # + a Kafka trigger
             "bend-projector": [f"{prefix}-projector"],
             "bend-archiver": [Archiver(rendered["production"].settings()).group_id],
             "bend-notifier": [Notifier(rendered["production"].settings()).group_id],
             "bend-chainer": [Chainer(rendered["production"].settings()).group_id]}
    for user, groups in joins.items():
        for group in groups:
            assert allowed(users[user], "Read", "group", group), (user, group)
        others = {g for u, gs in joins.items() if u != user for g in gs}
        assert not any(allowed(users[user], "Read", "group", g) for g in others), user
    assert not any(allowed(users["bend-api"], "Read", "group", g)
                   for gs in joins.values() for g in gs)


def test_the_archiver_reads_exactly_the_topics_it_archives_and_writes_nothing(
        rendered: dict[str, Rendered], users: dict[str, dict[str, Any]]) -> None:
    archiver = users["bend-archiver"]
    settings = rendered["production"].settings()
    every = {_topic(kind) for kind in TOPIC_KINDS}
    assert {t for t in every if allowed(archiver, "Read", "topic", t)} == \
        set(archived_topics(settings))
    assert {t for t in every if allowed(archiver, "Describe", "topic", t)} == \
        set(archived_topics(settings))  # the ops server's lag reads their offsets
    for rtype, name in [*(("topic", t) for t in every), ("topic", "bend.other"),
                        ("transactionalId", "bend.run-states-0"), ("cluster", "kafka-cluster")]:
        for op in ("Write", "Create", "Delete", "Alter", "AlterConfigs", "IdempotentWrite"):
            assert not allowed(archiver, op, rtype, name), (op, rtype, name)


def test_only_the_orchestrator_may_write_run_states_transactionally(
        users: dict[str, dict[str, Any]]) -> None:
    # streams/snapshots.py: transactional_id `<run-states topic>-<partition>`.
    writers = {n for n, u in users.items()
               if allowed(u, "Write", "transactionalId", "bend.run-states-3")}
    assert writers == {"bend-orchestrator"}


def test_keda_only_describes_the_lag_it_scales_on(rendered: dict[str, Rendered],
                                                  users: dict[str, dict[str, Any]]) -> None:
    keda = users["bend-keda"]
    for scaled in rendered["production"].of("ScaledObject"):
        meta = scaled["spec"]["triggers"][0]["metadata"]
        assert allowed(keda, "Describe", "topic", meta["topic"])
        assert allowed(keda, "Describe", "group", meta["consumerGroup"])
    for kind in TOPIC_KINDS:
        assert not allowed(keda, "Read", "topic", _topic(kind))
        assert not allowed(keda, "Write", "topic", _topic(kind))


def test_every_acl_names_a_topic_that_exists(rendered: dict[str, Rendered],
                                            users: dict[str, dict[str, Any]]) -> None:
    topics = {t["spec"]["topicName"] for t in rendered["production"].of("KafkaTopic")}
    for name, user in users.items():
        for acl in user["spec"]["authorization"]["acls"]:
            res = acl["resource"]
            if res["type"] == "topic" and res.get("patternType", "literal") == "literal":
                assert res["name"] in topics, (name, res["name"])


def test_the_evaluator_follows_kafkas_rules() -> None:
    user = {"spec": {"authorization": {"acls": [
        {"resource": {"type": "topic", "name": "bend.", "patternType": "prefix"},
         "operations": ["Read"]},
        {"resource": {"type": "topic", "name": "bend.tasks", "patternType": "literal"},
         "operations": ["All"], "type": "deny"},
        {"resource": {"type": "group", "name": "g"}, "operation": "Read"}]}}}
    assert allowed(user, "Read", "topic", "bend.runs")
    assert allowed(user, "Describe", "topic", "bend.runs")  # implied by Read
    assert not allowed(user, "Write", "topic", "bend.runs")
    assert not allowed(user, "Read", "topic", "bend.tasks")  # deny wins
    assert not allowed(user, "Read", "topic", "other")
    assert allowed(user, "Read", "group", "g") and not allowed(user, "Read", "group", "g2")
