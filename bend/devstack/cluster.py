"""A three-node Apache Kafka KRaft cluster on 127.0.0.1, from the jars `bend dev up` fetches.

Each node is broker and controller; the quorum is all three. Topics default to three replicas
and min.insync.replicas 2, so one node may die without losing or refusing an acks=all write.
For fault tests: a node is killed by its PID (SIGKILL) and restarted on its own ports and data.

    with running_cluster(settings, "faults") as cluster:
        cluster.bootstrap                  # 127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
        cluster.kill(2); cluster.restart(2); cluster.wait_broker(2, timeout_s=60)

    python -m bend.devstack.cluster up|down [NAME]   # by hand; state in <state_dir>/clusters
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bend.devstack import kafka, process
from bend.devstack.errors import NotAnswering, ServiceFailed
from bend.devstack.secure import ADMIN, SecureListener
from bend.settings import KafkaSettings, Settings, get_settings

__all__ = ["Cluster", "ClusterNode", "render_node_properties", "running_cluster"]

_STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class ClusterNode:
    """One node: its id, client and controller ports, and where it keeps its files."""

    node_id: int
    port: int
    controller_port: int
    root: Path

    @property
    def address(self) -> str:
        """Its client listener, host:port."""
        return f"127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        """log.dirs: its replicas and its copy of the KRaft metadata log."""
        return self.root / "data"

    @property
    def properties(self) -> Path:
        """server.properties, rendered on every start."""
        return self.root / "server.properties"

    @property
    def log(self) -> Path:
        """The node's stdout and stderr."""
        return self.root / "kafka.log"

    @property
    def pid_file(self) -> Path:
        """The node's PID file."""
        return self.root / "kafka.pid"


def render_node_properties(node: ClusterNode, nodes: list[ClusterNode], *,
                           replication_factor: int = 3, min_insync_replicas: int = 2,
                           extra: Mapping[str, str] | None = None) -> str:
    """server.properties of one node that is broker and controller of a static quorum."""
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    lines = kafka.kraft_properties(
        node_id=node.node_id, port=node.port, controller_port=node.controller_port,
        voters=voters, data_dir=node.data, replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas, internal_partitions=3,
        # A lost replica is never elected leader with records it lacks.
        extra={"unclean.leader.election.enable": "false", **(extra or {})})
    return kafka.properties_text("Written by bend.devstack.cluster on every start of this node.",
                                 lines)


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together while chosen)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class Cluster:
    """The nodes of one named cluster under `<state_dir>/clusters/<name>`; started here."""

    settings: Settings
    name: str = "cluster"
    size: int = 3
    replication_factor: int = 3
    min_insync_replicas: int = 2
    heap: str = "512m"
    die_with_parent: bool = True  # a test killed mid-way leaves no JVM behind
    # More server.properties, e.g. {"broker.session.timeout.ms": "3000"}: how soon the
    # controller fences a dead broker and moves its leaderships (Kafka's default: 9 s).
    properties: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # A SASL_SSL client listener instead of PLAINTEXT (bend.devstack.secure); the cluster's own
    # checks log in as its admin user.
    secure: SecureListener | None = None
    nodes: list[ClusterNode] = field(default_factory=list)
    _pids: dict[int, int] = field(default_factory=dict)
    _cluster_id: str = ""

    @property
    def root(self) -> Path:
        """Where the cluster's nodes, ports and cluster id are kept."""
        return Path(self.settings.dev.state_dir) / "clusters" / self.name

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (BEND_KAFKA__BOOTSTRAP)."""
        return ",".join(n.address for n in self.nodes)

    @property
    def admin_security(self) -> KafkaSettings | None:
        """How the cluster's own checks connect: None (PLAINTEXT) or as the admin user."""
        return self.secure.client(self.bootstrap, ADMIN) if self.secure else None

    def node(self, node_id: int) -> ClusterNode:
        """The node with this id (1..size)."""
        return next(n for n in self.nodes if n.node_id == node_id)

    def pid(self, node_id: int) -> int | None:
        """The node's PID if it runs."""
        pid = self._pids.get(node_id)
        return pid if pid is not None and process.pid_alive(pid) else None

    def _layout(self) -> None:
        """Choose ports once; a restart of the cluster or of a node reuses them."""
        self.root.mkdir(parents=True, exist_ok=True)
        layout = self.root / "layout.json"
        if layout.is_file():
            saved = json.loads(layout.read_text())
        else:
            ports = _free_ports(2 * self.size)
            saved = {"cluster_id": kafka.new_cluster_id(),
                     "nodes": [{"node_id": i + 1, "port": ports[2 * i],
                                "controller_port": ports[2 * i + 1]} for i in range(self.size)]}
            layout.write_text(json.dumps(saved, indent=2) + "\n")
        self._cluster_id = saved["cluster_id"]
        self.nodes = [ClusterNode(n["node_id"], n["port"], n["controller_port"],
                                  self.root / f"node-{n['node_id']}") for n in saved["nodes"]]

    def start(self, timeout_s: float = 90.0) -> None:
        """Fetch the jars if needed, start every node and wait until all are brokers."""
        kafka.ensure_jars(self.settings, self.env)
        self._layout()
        for node in self.nodes:
            self.restart(node.node_id)
        self.wait_brokers(self.size, timeout_s)

    def restart(self, node_id: int) -> int:
        """(Re)start one node on its ports and data (formatted on first start); its PID.

        Call it from the thread that lives as long as the node should: with `die_with_parent`
        the node dies with the thread that started it."""
        if not self.nodes:
            self._layout()
        node = self.node(node_id)
        if self.pid(node_id) is not None:
            raise ServiceFailed(self._name(node), "is already running", node.log)
        for port, setting in ((node.port, "its port"), (node.controller_port, "its controller "
                                                        "port")):
            process.require_free_port(port, f"{setting} in {self.root / 'layout.json'}")
        java = kafka.java_path(self.env)
        node.data.mkdir(parents=True, exist_ok=True)
        listener = self.secure.properties(node.port, node.controller_port) if self.secure else {}
        node.properties.write_text(render_node_properties(
            node, self.nodes, replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas, extra={**listener, **self.properties}))
        libs = kafka.KafkaPaths.of(self.settings).libs
        kafka.format_storage(libs, node.properties, node.data, self._cluster_id, java, self.env,
                             self._name(node),
                             extra_args=self.secure.format_args() if self.secure else ())
        with open(node.log, "a") as log:
            log.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        pid = process.launch(kafka.broker_argv(java, self.heap, libs, node.properties),
                             node.log, env=self.env, cwd=node.root,
                             die_with_parent=self.die_with_parent)
        node.pid_file.write_text(f"{pid}\n")
        self._pids[node_id] = pid
        return pid

    def kill(self, node_id: int) -> int:
        """SIGKILL one node (the crash a test simulates); its PID. Waits until it is gone."""
        pid = self.pid(node_id)
        if pid is None:
            raise ServiceFailed(self._name(self.node(node_id)), "is not running", None)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while process.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.node(node_id).pid_file.unlink(missing_ok=True)
        del self._pids[node_id]
        return pid

    def brokers(self) -> set[int]:
        """The ids of the brokers the cluster's metadata lists now (alive and unfenced)."""
        from confluent_kafka import KafkaException

        try:
            admin = kafka.admin_client(self.bootstrap, self.admin_security)
            return set(admin.list_topics(timeout=1).brokers)
        except KafkaException:
            return set()

    def wait_brokers(self, count: int, timeout_s: float) -> None:
        """Wait until `count` brokers are registered; fail early if a node exits."""
        self._wait(lambda ids: len(ids) >= count, f"{count} brokers", timeout_s)

    def wait_broker(self, node_id: int, timeout_s: float) -> None:
        """Wait until node `node_id` answers on its own listener and is a registered broker.

        The cluster keeps listing a killed broker until its session expires
        (broker.session.timeout.ms, 9 s), so the cluster's word alone is not enough."""
        address = self.node(node_id).address
        self._wait(lambda ids: node_id in ids and kafka.answering(address, 1.0,
                                                                  self.admin_security),
                   f"broker {node_id}", timeout_s)

    def under_replicated(self) -> int:
        """Partitions (of every topic) whose in-sync replicas are fewer than their replicas."""
        from confluent_kafka import KafkaException

        try:
            admin = kafka.admin_client(self.bootstrap, self.admin_security)
            topics = admin.list_topics(timeout=2).topics
        except KafkaException:
            return -1
        return sum(1 for t in topics.values() for p in t.partitions.values()
                   if len(p.isrs) < len(p.replicas))

    def wait_in_sync(self, timeout_s: float) -> None:
        """Wait until every partition has all its replicas in sync (a restarted node caught up),
        so that losing another node leaves min.insync.replicas everywhere."""
        self._wait(lambda _: self.under_replicated() == 0, "all replicas in sync", timeout_s)

    def _wait(self, done: Callable[[set[int]], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(self.brokers()):
                return
            for node_id, pid in self._pids.items():  # started and not killed on purpose
                if not process.pid_alive(pid):
                    node = self.node(node_id)
                    raise ServiceFailed(self._name(node), "exited while starting", node.log,
                                        process.log_tail(node.log))
            time.sleep(0.1)
        raise NotAnswering(f"Kafka cluster {self.name} ({what})", timeout_s, self.root)

    def stop(self) -> None:
        """Stop every node started here (SIGTERM to all at once, SIGKILL after a grace)."""
        for pid in self._pids.values():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for node_id, pid in list(self._pids.items()):
            if process.pid_alive(pid):
                process.stop_pid(pid, grace_s=_STOP_GRACE_S)
            self.node(node_id).pid_file.unlink(missing_ok=True)
        self._pids.clear()

    def remove(self) -> None:
        """Stop the nodes and delete the cluster's files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _name(self, node: ClusterNode) -> str:
        return f"kafka {self.name} node {node.node_id}"


@contextmanager
def running_cluster(settings: Settings | None = None, name: str = "cluster", *,
                    keep: bool = False, timeout_s: float = 90.0,
                    properties: Mapping[str, str] | None = None, size: int = 3,
                    secure: SecureListener | None = None) -> Iterator[Cluster]:
    """A started cluster of `size` nodes (replicas and min.insync.replicas fit it), with a
    SASL_SSL listener if `secure`; stopped afterwards, and its files deleted unless `keep`."""
    cluster = Cluster(settings or get_settings(), name, size=size,
                      replication_factor=min(3, size), min_insync_replicas=min(2, size),
                      properties=dict(properties or {}), secure=secure)
    with ExitStack() as stack:
        stack.callback(cluster.stop if keep else cluster.remove)
        cluster.start(timeout_s)
        yield cluster


def _main(argv: list[str]) -> int:
    """`up [NAME]`: start (kept running, detached); `down [NAME]`: stop by PID file, delete."""
    if not argv or argv[0] not in ("up", "down"):
        print("usage: python -m bend.devstack.cluster up|down [NAME]", file=sys.stderr)
        return 2
    cluster = Cluster(get_settings(), argv[1] if len(argv) > 1 else "cluster",
                      die_with_parent=False)
    if argv[0] == "up":
        cluster.start()
        print(f"BEND_KAFKA__BOOTSTRAP={cluster.bootstrap}")
        return 0
    if (cluster.root / "layout.json").is_file():
        cluster._layout()  # noqa: SLF001
        for node in cluster.nodes:
            pid = process.read_pid(node.pid_file)
            if pid is not None and "kafka.Kafka" in process.cmdline(pid) \
                    and str(node.properties) in process.cmdline(pid):
                process.stop_pid(pid, grace_s=_STOP_GRACE_S)
    shutil.rmtree(cluster.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
