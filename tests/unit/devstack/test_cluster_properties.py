"""The 3-node cluster's server.properties: one static quorum, three replicas, two in sync."""

from __future__ import annotations

from pathlib import Path

from bend.devstack.cluster import ClusterNode, render_node_properties
from bend.devstack.secure import SecureListener


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")


def test_each_node_is_broker_and_controller_of_one_quorum_on_loopback(tmp_path: Path) -> None:
    nodes = [ClusterNode(i, 40000 + i, 41000 + i, tmp_path / f"node-{i}") for i in (1, 2, 3)]
    props = [_props(render_node_properties(n, nodes)) for n in nodes]
    assert {p["controller.quorum.voters"] for p in props} == {
        "1@127.0.0.1:41001,2@127.0.0.1:41002,3@127.0.0.1:41003"}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert props[1]["listeners"] == "PLAINTEXT://127.0.0.1:40002,CONTROLLER://127.0.0.1:41002"
    assert props[1]["log.dirs"] == str(tmp_path / "node-2" / "data")
    for p in props:
        assert p["process.roles"] == "broker,controller"
        assert (p["default.replication.factor"], p["min.insync.replicas"]) == ("3", "2")
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"


def test_extra_properties_override_the_defaults(tmp_path: Path) -> None:
    node = ClusterNode(1, 40001, 41001, tmp_path)
    text = render_node_properties(node, [node], extra={"broker.session.timeout.ms": "3000"})
    assert _props(text)["broker.session.timeout.ms"] == "3000"


def test_a_secure_listener_replaces_plaintext_with_sasl_ssl_and_scram_users(
        tmp_path: Path) -> None:
    listener = SecureListener.make(tmp_path / "certs", ["bend"], authorizer=True)
    node = ClusterNode(1, 40001, 41001, tmp_path)
    props = _props(render_node_properties(node, [node], extra=listener.properties(40001, 41001)))
    assert props["listeners"] == "SASL_SSL://127.0.0.1:40001,CONTROLLER://127.0.0.1:41001"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:40001"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.client.auth"] == "required"
    assert props["ssl.keystore.key"].startswith("-----BEGIN PRIVATE KEY-----\\n")
    assert props["super.users"] == "User:admin;User:ANONYMOUS"
    assert f'password="{listener.users["admin"]}"' in \
        props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert listener.format_args() == [
        "--add-scram", f"SCRAM-SHA-512=[name=admin,password={listener.users['admin']}]",
        "--add-scram", f"SCRAM-SHA-512=[name=bend,password={listener.users['bend']}]"]
    kafka = listener.client("127.0.0.1:40001", "bend")
    assert (kafka.security_protocol, kafka.sasl_username) == ("SASL_SSL", "bend")
