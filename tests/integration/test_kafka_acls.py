"""The production overlay's KafkaUser ACLs, enforced by a real broker: a SASL_SSL node with
Kafka's StandardAuthorizer (nothing allowed without an ACL) gets the ACLs rendered from
deploy/k8s/overlays/production, and each Bend process logs in as its role's user. A run
completes, is projected and archived; a role trying another's write is refused by the broker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from bend.archive.store import ArchiveStore
from bend.contracts.admin import ensure_topics
from bend.core.events import RunCompleted
from bend.deploy.kustomize import render
from bend.devstack.cluster import Cluster, running_cluster
from bend.devstack.engine import Engine
from bend.devstack.llm_server import start_llm_server
from bend.devstack.secure import ADMIN, SecureListener
from bend.devstack.workers import Workers
from bend.kafka import clients
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.settings import PROJECT_ROOT, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OVERLAY = PROJECT_ROOT / "deploy" / "k8s" / "overlays" / "production"
PREFIX = "bend"  # the topic names the ACLs are written for; this broker is the test's own
WORKFLOW = {"name": "acl", "steps": [
    {"id": "a", "type": "tool", "component": "noop@1", "inputs": {"n": "1"}},
    {"id": "b", "type": "tool", "component": "noop@1", "inputs": {"n": "2"}, "after": ["a"]}]}


def _bindings(users: list[dict[str, Any]]) -> list[Any]:
    """confluent-kafka AclBindings for the Strimzi KafkaUsers' `simple` ACLs."""
    from confluent_kafka.admin import (
        AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType,
    )

    types = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
             "transactionalId": ResourceType.TRANSACTIONAL_ID, "cluster": ResourceType.BROKER}
    ops = {"Read": AclOperation.READ, "Write": AclOperation.WRITE,
           "Describe": AclOperation.DESCRIBE, "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
           "Create": AclOperation.CREATE, "All": AclOperation.ALL}
    out = []
    for user in users:
        for acl in user["spec"]["authorization"]["acls"]:
            res = acl["resource"]
            pattern = (ResourcePatternType.PREFIXED if res.get("patternType") == "prefix"
                       else ResourcePatternType.LITERAL)
            name = res.get("name", "kafka-cluster")
            permission = (AclPermissionType.DENY if acl.get("type") == "deny"
                          else AclPermissionType.ALLOW)
            for op in acl.get("operations") or [acl["operation"]]:
                out.append(AclBinding(types[res["type"]], name, pattern,
                                      f"User:{user['metadata']['name']}", acl.get("host", "*"),
                                      ops[op], permission))
    return out


@pytest.fixture(scope="module")
def users() -> list[dict[str, Any]]:
    return [o for o in render(OVERLAY) if o["kind"] == "KafkaUser"]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory,
             users: list[dict[str, Any]]) -> SecureListener:
    return SecureListener.make(tmp_path_factory.mktemp("acl"),
                               [u["metadata"]["name"] for u in users], authorizer=True)


@pytest.fixture(scope="module")
def cluster(listener: SecureListener, users: list[dict[str, Any]]) -> Iterator[Cluster]:
    with running_cluster(name=f"acl{uuid.uuid4().hex[:8]}", size=1, secure=listener,
                         timeout_s=90) as c:
        admin = clients.confluent_admin(listener.client(c.bootstrap, ADMIN))
        for future in admin.create_acls(_bindings(users)).values():
            future.result(timeout=30)
        # Strimzi's Topic Operator makes the topics in production; here the super user does.
        base = get_settings()
        kafka = listener.client(c.bootstrap, ADMIN).model_copy(
            update={"topic_prefix": PREFIX, "default_partitions": 2})
        ensure_topics(base.model_copy(update={"kafka": kafka}))
        yield c


def _as(listener: SecureListener, cluster: Cluster, user: str) -> Any:
    base = get_settings()
    kafka = listener.client(cluster.bootstrap, user).model_copy(
        update={"topic_prefix": PREFIX, "default_partitions": 2})
    return base.model_copy(update={"kafka": kafka})


def _env(listener: SecureListener, cluster: Cluster, user: str) -> dict[str, str]:
    return {**listener.client_env(user), "BEND_KAFKA__BOOTSTRAP": cluster.bootstrap,
            "BEND_KAFKA__TOPIC_PREFIX": PREFIX, "BEND_KAFKA__DEFAULT_PARTITIONS": "2"}


async def test_each_role_does_its_job_with_only_its_own_acls(
        cluster: Cluster, listener: SecureListener, database_url: str, tmp_path: Path) -> None:
    api = _as(listener, cluster, "bend-api")
    workers = Workers(api, log_dir=Path(get_settings().dev.state_dir) / "logs" / "acl")
    schema = f"acl_{uuid.uuid4().hex[:8]}"
    projector_log = workers.log_dir / "projector.log"
    workers.log_dir.mkdir(parents=True, exist_ok=True)
    llm = start_llm_server(0)
    projector = archiver = None
    followers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    archive = ArchiveStore(tmp_path / "archive")
    try:
        for role, user in (("orchestrator", "bend-orchestrator"), ("executor", "bend-executor"),
                           ("triggers", "bend-scheduler")):
            workers.env = _env(listener, cluster, user)
            workers.start(role, wait=False)
        with projector_log.open("ab") as out:
            projector = subprocess.Popen(
                [sys.executable, "-m", "projections", "run"], stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **_env(listener, cluster, "bend-projector"),
                     "BEND_DATABASE_URL": database_url, "BEND_DATABASE__SCHEMA_NAME": schema,
                     "BEND_OPS__PORT": "0"})
        with (workers.log_dir / "archiver.log").open("ab") as out:
            archiver = subprocess.Popen(
                [sys.executable, "-m", "bend.archive", "run"], stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **_env(listener, cluster, "bend-archiver"),
                     "BEND_ARCHIVE__DIR": str(archive.root),
                     "BEND_ARCHIVE__FLUSH_AFTER_S": "0.5", "BEND_OPS__PORT": "0"})
        for role, module in (("notifier", "streams.notifications"),
                             ("chainer", "streams.chaining")):
            port = _free_port()
            with (workers.log_dir / f"{role}.log").open("ab") as out:
                followers[role] = (subprocess.Popen(
                    [sys.executable, "-m", module, "run"], stdout=out, stderr=subprocess.STDOUT,
                    env={**os.environ, **_env(listener, cluster, f"bend-{role}"),
                         "BEND_DATABASE_URL": database_url, "BEND_DATABASE__SCHEMA_NAME": schema,
                         "BEND_OPS__PORT": str(port)}), port)
        # Readiness is judged by an admin look at the groups, as the API's user may not.
        workers.settings = _as(listener, cluster, ADMIN)
        for role in ("orchestrator", "executor", "triggers"):
            workers.wait_ready(role, timeout_s=90)
        engine = Engine(api, workers, llm)
        start = engine.start_run(WORKFLOW, {})
        async with RunWatcher(api) as watcher, RecordProducer(api) as producer:
            await producer.send(start)  # the API's user writes a command
            done = await watcher.wait_finished([start.run_id], timeout_s=90)
        assert isinstance(done[start.run_id], RunCompleted), done[start.run_id]
        assert await _projected(database_url, schema, start.run_id, projector) == "completed"
        assert await _archived(archive, f"{PREFIX}.run-events", start.run_id,
                               archiver) == "RunCompleted"
        for role, (proc, port) in followers.items():  # joined their groups as their own users
            assert await _ready(proc, port) == 200, f"the {role} is not ready (see its log)"
    finally:
        workers.stop()
        llm.stop()
        for proc in (projector, archiver, *(p for p, _ in followers.values())):  # started here
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(proc: subprocess.Popen[bytes], port: int) -> int | None:
    """The follower's /readyz status once it answers 200 (Kafka, Postgres and its group's
    partitions), or the last one seen within 60 s."""
    status = None
    for _ in range(300):
        assert proc.poll() is None, "the process exited (see its log)"
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                status = (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code
            if status == 200:
                return status
        except httpx.TransportError:
            pass  # not listening yet
        await asyncio.sleep(0.2)
    return status


async def _projected(url: str, schema: str, run_id: str,
                     projector: subprocess.Popen[bytes]) -> str | None:
    for _ in range(150):
        assert projector.poll() is None, "the projector exited (see its log)"
        try:
            conn = await asyncpg.connect(url)
            try:
                status = await conn.fetchval(
                    f'SELECT status FROM "{schema}".runs WHERE run_id = $1', run_id)
            finally:
                await conn.close()
            if status in ("completed", "failed"):
                return status
        except asyncpg.UndefinedTableError:
            pass  # not migrated yet
        await asyncio.sleep(0.2)
    return None


async def _archived(store: ArchiveStore, topic: str, run_id: str,
                    archiver: subprocess.Popen[bytes]) -> str | None:
    """The last event type of the run in the archive, once it is RunCompleted (or the wait
    ends)."""
    last = None
    for _ in range(150):
        assert archiver.poll() is None, "the archiver exited (see its log)"
        types = [r.event_type for p in store.partitions(topic) for r in store.read(topic, p)
                 if r.run_id == run_id]
        last = types[-1] if types else None
        if last == "RunCompleted":
            break
        await asyncio.sleep(0.2)
    return last


@pytest.mark.parametrize(("user", "topic"), [
    ("bend-api", "run-events"), ("bend-api", "tasks"), ("bend-executor", "workflows"),
    ("bend-executor", "run-events"), ("bend-projector", "commands"), ("bend-keda", "commands"),
    ("bend-archiver", "run-events"), ("bend-archiver", "dead-letters"),
    ("bend-notifier", "run-events"), ("bend-notifier", "commands"), ("bend-chainer", "run-events"),
])
async def test_the_broker_refuses_a_write_the_role_has_no_acl_for(
        cluster: Cluster, listener: SecureListener, user: str, topic: str) -> None:
    kafka = _as(listener, cluster, user).kafka
    producer = clients.producer(kafka, acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:  # any bytes: the broker refuses the write before looking at them
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(f"{PREFIX}.{topic}", b"x", key=b"k")
    finally:
        await producer.stop()
