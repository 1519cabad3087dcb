"""A one-node Apache Kafka (KRaft, broker and controller) on 127.0.0.1, from Maven Central jars."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bend.devstack import process
from bend.devstack.errors import (
    DownloadFailed,
    JavaMissing,
    MavenMissing,
    NotAnswering,
    ServiceFailed,
)
from bend.devstack.service import ServiceStatus
from bend.kafka import clients
from bend.settings import PROJECT_ROOT, KafkaSettings, Settings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

__all__ = [
    "KafkaPaths",
    "admin_client",
    "answering",
    "bootstrap",
    "broker_argv",
    "ensure_jars",
    "format_storage",
    "java_path",
    "launch",
    "new_cluster_id",
    "preflight",
    "render_properties",
    "running_pid",
    "status",
    "stop",
    "wait_ready",
]

NAME = "kafka"
POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = PROJECT_ROOT / "deploy" / "kafka" / "log4j.properties"
_MAVEN_TIMEOUT_S = 600.0
_STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class KafkaPaths:
    """Where the broker keeps its jars, config, data, log and PID under the state dir."""

    root: Path
    maven_repo: Path

    @classmethod
    def of(cls, settings: Settings) -> KafkaPaths:
        """The paths for settings.dev.state_dir."""
        state = Path(settings.dev.state_dir)
        return cls(root=state / "kafka", maven_repo=state / "maven-repo")

    @property
    def libs(self) -> Path:
        """The broker's jars (the classpath)."""
        return self.root / "libs"

    @property
    def libs_marker(self) -> Path:
        """Holds the Kafka version once every jar of it is in libs."""
        return self.libs / ".bend-complete"

    @property
    def data(self) -> Path:
        """log.dirs: the topics and the KRaft metadata log."""
        return self.root / "data"

    @property
    def properties(self) -> Path:
        """server.properties, rendered on every start."""
        return self.root / "server.properties"

    @property
    def cluster_id(self) -> Path:
        """The cluster id the data dir was formatted with."""
        return self.root / "cluster.id"

    @property
    def log(self) -> Path:
        """The broker's stdout and stderr."""
        return self.root / "kafka.log"

    @property
    def pid(self) -> Path:
        """The broker's PID file."""
        return self.root / "kafka.pid"


def bootstrap(settings: Settings) -> str:
    """The bootstrap address of the local broker."""
    return f"127.0.0.1:{settings.dev.kafka_port}"


def kraft_properties(*, node_id: int, port: int, controller_port: int, voters: str,
                     data_dir: Path, replication_factor: int = 1, min_insync_replicas: int = 1,
                     internal_partitions: int = 1,
                     extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """server.properties of a node that is both broker and controller of a static KRaft quorum
    (`voters`: `id@host:port,...`), listening on 127.0.0.1 only."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": str(replication_factor),
        "min.insync.replicas": str(min_insync_replicas),
        "offsets.topic.replication.factor": str(replication_factor),
        # With several nodes, group coordinators spread over them.
        "offsets.topic.num.partitions": str(internal_partitions),
        "transaction.state.log.replication.factor": str(replication_factor),
        "transaction.state.log.min.isr": str(min_insync_replicas),
        "transaction.state.log.num.partitions": str(internal_partitions),
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created on purpose (bend.contracts.topics), never by a typo'd producer.
        "auto.create.topics.enable": "false",
        # Lets Faust use short sessions so a restart after kill -9 waits seconds, not a minute.
        "group.min.session.timeout.ms": "1000",
        **(extra or {}),
    }


def properties_text(header: str, lines: Mapping[str, str]) -> str:
    """A server.properties file: a comment line, then `key=value` lines."""
    return f"# {header}\n" + "".join(f"{key}={value}\n" for key, value in lines.items())


def render_properties(settings: Settings, data_dir: Path) -> str:
    """server.properties for the local stack's one node."""
    port, ctl = settings.dev.kafka_port, settings.dev.kafka_controller_port
    lines = kraft_properties(node_id=1, port=port, controller_port=ctl,
                             voters=f"1@127.0.0.1:{ctl}", data_dir=data_dir)
    return properties_text("Written by `bend dev up` on every start; edit bend/devstack/kafka.py "
                           "instead.", lines)


def java_path(env: Mapping[str, str]) -> str:
    """The java executable: JAVA_HOME's if set, else the one on PATH."""
    home = env.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java", path=env.get("PATH", ""))
    if found is None:
        raise JavaMissing()
    return found


def preflight(settings: Settings, env: Mapping[str, str]) -> None:
    """Fail fast on a missing Java or a taken port, before anything is started."""
    java_path(env)
    process.require_free_port(settings.dev.kafka_port, "BEND_DEV__KAFKA_PORT")
    process.require_free_port(settings.dev.kafka_controller_port, "BEND_DEV__KAFKA_CONTROLLER_PORT")


def ensure_jars(settings: Settings, env: Mapping[str, str]) -> float | None:
    """Copy the broker's jars into the state dir once; seconds spent, None if already there."""
    paths, version = KafkaPaths.of(settings), settings.dev.kafka_version
    if paths.libs_marker.is_file() and paths.libs_marker.read_text().strip() == version:
        return None
    if not version.startswith("3."):
        # 4.x logs through log4j 2 and needs another logging jar and config than deploy/kafka has.
        why = f"version {version} is not wired; set BEND_DEV__KAFKA_VERSION to a 3.x (3.9.2)"
        raise ServiceFailed(NAME, why, None)
    mvn = shutil.which("mvn", path=env.get("PATH", ""))
    if mvn is None:
        raise MavenMissing()
    started = time.monotonic()
    shutil.rmtree(paths.libs, ignore_errors=True)  # a half copy or another version
    paths.libs.mkdir(parents=True)
    argv = [
        mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={paths.libs}",
        f"-Dmaven.repo.local={paths.maven_repo}", f"-Dkafka.version={version}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv, env=dict(env), capture_output=True, text=True, timeout=_MAVEN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise DownloadFailed(f"(no answer within {_MAVEN_TIMEOUT_S:.0f} s)") from exc
    if done.returncode != 0 or not any(paths.libs.glob("kafka_2.13-*.jar")):
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise DownloadFailed(tail or f"(exit code {done.returncode}, no output)")
    paths.libs_marker.write_text(version + "\n")
    return time.monotonic() - started


def running_pid(settings: Settings) -> int | None:
    """The PID of this state dir's broker if it is alive, else None (a stale PID file is)."""
    paths = KafkaPaths.of(settings)
    pid = process.read_pid(paths.pid)
    if pid is None or not process.pid_alive(pid):
        return None
    line = process.cmdline(pid)
    # Guards against a PID reused by an unrelated process after a reboot.
    if line and not ("kafka.Kafka" in line and str(paths.properties) in line):
        return None
    return pid


def new_cluster_id() -> str:
    """A cluster id made as Kafka's Uuid.randomUuid does (base64url of 16 random bytes)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids these too: they read as a CLI flag
            return cid


def _cluster_id(paths: KafkaPaths) -> str:
    """The cluster id kept in a file, made once."""
    if paths.cluster_id.is_file():
        return paths.cluster_id.read_text().strip()
    cid = new_cluster_id()
    paths.cluster_id.write_text(cid + "\n")
    return cid


def format_storage(libs: Path, properties: Path, data: Path, cluster_id: str, java: str,
                   env: Mapping[str, str], name: str = NAME, *,
                   extra_args: Sequence[str] = ()) -> None:
    """Format a node's data dir (`kafka.tools.StorageTool format`) on its first start only;
    `extra_args` e.g. `--add-scram` (bend.devstack.secure)."""
    if (data / "meta.properties").is_file():
        return
    argv = [
        java, "-cp", f"{libs}/*", f"-Dlog4j.configuration=file:{LOG4J}",
        "kafka.tools.StorageTool", "format", "-t", cluster_id,
        "-c", str(properties), "--ignore-formatted", *extra_args,
    ]  # fmt: skip
    done = subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise ServiceFailed(name, "storage format failed", None, tail)


def broker_argv(java: str, heap: str, libs: Path, properties: Path) -> list[str]:
    """The command line of one Kafka node."""
    return [
        java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{LOG4J}",
        "-cp", f"{libs}/*", "kafka.Kafka", str(properties),
    ]  # fmt: skip


def launch(settings: Settings, env: Mapping[str, str]) -> int:
    """Render the config, format once, start the broker detached and write its PID file."""
    paths = KafkaPaths.of(settings)
    java = java_path(env)
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.properties.write_text(render_properties(settings, paths.data))
    format_storage(paths.libs, paths.properties, paths.data, _cluster_id(paths), java, env)
    argv = broker_argv(java, settings.dev.kafka_heap, paths.libs, paths.properties)
    with open(paths.log, "a") as log:
        log.write(f"--- bend dev up {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    pid = process.launch(argv, paths.log, env=env, cwd=paths.root)
    paths.pid.write_text(f"{pid}\n")
    return pid


def admin_client(address: str, security: KafkaSettings | None = None) -> AdminClient:
    """An AdminClient that stays quiet and retries fast while the broker is coming up;
    `security` gives its TLS and SASL settings (their bootstrap is replaced by `address`)."""
    kafka = (security or KafkaSettings()).model_copy(update={"bootstrap": address})
    return clients.confluent_admin(kafka, {
        "log_level": 0,  # "connection refused" before the broker listens is expected, not news
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 250,
    })  # fmt: skip


def answering(address: str, timeout_s: float = 1.0,
              security: KafkaSettings | None = None) -> bool:
    """True if a broker at address answers a metadata request within timeout_s."""
    from confluent_kafka import KafkaException

    try:
        return bool(admin_client(address, security).list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False


def wait_ready(settings: Settings, pid: int, timeout_s: float) -> None:
    """Poll the broker until it answers; fail early if its process exits."""
    from confluent_kafka import KafkaException

    paths, admin = KafkaPaths.of(settings), admin_client(bootstrap(settings))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=1).brokers:
                return
        except KafkaException:
            pass
        if not process.pid_alive(pid):
            paths.pid.unlink(missing_ok=True)
            tail = process.log_tail(paths.log)
            raise ServiceFailed(NAME, "exited while starting", paths.log, tail)
        time.sleep(0.05)
    raise NotAnswering("Kafka", timeout_s, paths.log)


def stop(settings: Settings) -> tuple[int | None, bool]:
    """Stop the broker by its PID file (SIGTERM, SIGKILL after a grace); (pid, killed)."""
    paths = KafkaPaths.of(settings)
    pid = running_pid(settings)
    killed = process.stop_pid(pid, grace_s=_STOP_GRACE_S) if pid else False
    paths.pid.unlink(missing_ok=True)
    return pid, killed


def status(settings: Settings) -> ServiceStatus:
    """Whether the broker runs, with its PID, address and whether it answers."""
    pid, address = running_pid(settings), bootstrap(settings)
    log = KafkaPaths.of(settings).log
    if pid is None:
        return ServiceStatus(NAME, running=False, answering=False, address=address, log_path=log)
    return ServiceStatus(NAME, True, answering(address), pid=pid, address=address, log_path=log)
