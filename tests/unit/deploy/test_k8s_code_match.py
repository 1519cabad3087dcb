"""The manifests name what the code names: commands, roles, settings, ports, probe paths,
consumer groups and topics, the image's user."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bend.cli.main import cli
from bend.deploy.envfile import SECRET_PREFIX, is_bend_name, read_env
from bend.ops.server import LIVENESS_PATH, METRICS_PATH, READINESS_PATH
from bend.settings import PROJECT_ROOT, DevSettings, Settings
from streams.worker import ROLES

from .conftest import K8S, OVERLAYS, Rendered

DOCKERFILE = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
# Deployment -> the command it runs; the scheduler is the worker role `triggers`.
COMMANDS = {"bend-api": "bend api serve", "bend-orchestrator": "bend worker orchestrator",
            "bend-executor": "bend worker executor", "bend-scheduler": "bend worker triggers",
            "bend-projector": "bend projector run", "bend-archiver": "bend archive run",
            "bend-notifier": "bend notifier run", "bend-chainer": "bend chainer run"}
# Secrets a production operator creates (overlays/production/kustomization.yaml says how),
# the one CloudNativePG writes for its Cluster, and those Strimzi writes: one per KafkaUser
# (named as it) and the cluster CA's public part.
EXTERNAL_SECRETS = {"production": {"bend-secrets"}, "local": {"bend-postgres-app"}}


def _external_secrets(overlay: str, r: Rendered) -> set[str]:
    (kafka,) = r.of("Kafka")
    return {*EXTERNAL_SECRETS[overlay], *r.names("KafkaUser"),
            f"{kafka['metadata']['name']}-cluster-ca-cert"}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _port(container: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name_or_number]
    return port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_has_a_deployment_running_its_real_command(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    assert r.names("Deployment") == set(COMMANDS)
    for name, command in COMMANDS.items():
        assert " ".join(_container(r.get("Deployment", name))["command"]) == command


def test_every_worker_role_the_code_has_runs_somewhere() -> None:
    roles = {c.split()[2] for c in COMMANDS.values() if c.startswith("bend worker ")}
    assert roles == set(ROLES)


@pytest.mark.parametrize("command", sorted({*COMMANDS.values()}))
def test_each_command_is_a_real_bend_command(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split()[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_the_images_default_command_is_a_real_bend_command() -> None:
    cmd = re.search(r'^CMD \[(.*)\]$', DOCKERFILE, re.M)
    assert cmd is not None
    argv = [a.strip().strip('"') for a in cmd.group(1).split(",")]
    assert argv[0] == "bend"
    result = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_images_non_root_user_on_a_read_only_root(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE, re.M)
    assert user is not None, "the Dockerfile's USER must be numeric (runAsNonRoot checks it)"
    uid, gid = int(user.group(1)), int(user.group(2))
    assert f"--uid {uid}" in DOCKERFILE and f"--gid {gid}" in DOCKERFILE
    state_dir = rendered[overlay].settings().dev.state_dir
    for deployment in rendered[overlay].of("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == \
            (uid, gid)
        container = _container(deployment)
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {str(state_dir), "/tmp"} <= mounts  # Faust's data dir and key files go there


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_requests_and_limits_cpu_and_memory(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    for deployment in rendered[overlay].of("Deployment"):
        resources = _container(deployment)["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert "memory" in resources["limits"], deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_bend_variable_in_the_manifests_is_read_by_bend(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    names = set(r.env())
    for secret in r.of("Secret"):
        names |= set(secret.get("data", {}))
    for deployment in r.of("Deployment"):
        names |= {e["name"] for e in _container(deployment).get("env", [])}
    bend_names = {n for n in names if n.startswith("BEND_")}
    assert bend_names == names, f"not BEND_ variables: {names - bend_names}"
    assert sorted(n for n in names if not is_bend_name(n)) == []


def test_the_secret_production_creates_by_hand_holds_only_bend_variables() -> None:
    text = (K8S / "overlays" / "production" / "kustomization.yaml").read_text()
    names = set(re.findall(r"--from-literal=(\w+)=", text))
    assert {"BEND_DATABASE_URL", "BEND_SECURITY__JWT_SECRET", "BEND_SECURITY__API_KEY_PEPPER",
            "BEND_SECURITY__SECRETS_KEY"} <= names
    assert sorted(n for n in names if not is_bend_name(n)) == []
    assert any(n.startswith(SECRET_PREFIX) for n in names)


def test_the_checker_tells_real_settings_from_misspelt_ones(tmp_path: Path) -> None:
    assert is_bend_name("BEND_KAFKA__BOOTSTRAP") and is_bend_name("BEND_SECRET_LLM_API_KEY")
    assert not is_bend_name("BEND_KAFKA__BOOTSTRAPS") and not is_bend_name("BEND_SECRET_")
    assert not is_bend_name("BEND_TENANT__X")
    env = tmp_path / "ok.env"
    env.write_text("BEND_OPS__PORT=9464\nOTHER=1\n")
    assert read_env([env]) == {"BEND_OPS__PORT": "9464", "OTHER": "1"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_referenced_config_and_secret_exists_or_is_made_outside(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    have = {"ConfigMap": r.names("ConfigMap"), "Secret": r.names("Secret")}
    for deployment in r.of("Deployment"):
        container = _container(deployment)
        refs = [("ConfigMap", s["configMapRef"]["name"]) for s in container["envFrom"]
                if "configMapRef" in s]
        refs += [("Secret", s["secretRef"]["name"]) for s in container["envFrom"]
                 if "secretRef" in s]
        refs += [("Secret", e["valueFrom"]["secretKeyRef"]["name"])
                 for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
        refs += [("Secret", v["secret"]["secretName"])
                 for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
        for kind, name in refs:
            assert name in have[kind] or name in _external_secrets(overlay, r), (kind, name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_processes_listen_on_all_interfaces_of_the_pod(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    settings = rendered[overlay].settings()
    assert settings.api.host == "0.0.0.0" and settings.ops.host == "0.0.0.0"
    assert settings.ops.enabled and settings.ops.port > 0  # 0 would pick a random port


def _probe_port(deployment: str, settings: Settings) -> int:
    """Where a process serves /livez, /readyz and /metrics: the API on its own port, every
    other process on its ops server (BEND_OPS__PORT)."""
    return settings.api.port if deployment == "bend-api" else settings.ops.port


def test_each_process_serves_the_probe_paths_where_the_manifests_look() -> None:
    import inspect

    import bend.archive.cli
    import bend.cli.followers
    import streams.follow
    import projections.cli
    import streams.worker
    from bend.api.routers.health import router

    assert {LIVENESS_PATH, READINESS_PATH, METRICS_PATH} <= {r.path for r in router.routes}
    assert "attach_ops(app, role, settings)" in inspect.getsource(streams.worker._run_role)
    assert "run_with_ops(" in inspect.getsource(projections.cli.run.callback)
    assert "run_with_ops(" in inspect.getsource(bend.archive.cli.run.callback)
    for command in (bend.cli.followers.run_notifier, bend.cli.followers.run_chainer):
        assert "serve(" in inspect.getsource(command.callback)  # streams.follow.serve
    assert "run_with_ops(make(settings))" in inspect.getsource(streams.follow.serve)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_scrapes_use_each_processs_port_and_paths(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    settings = rendered[overlay].settings()
    for deployment in rendered[overlay].of("Deployment"):
        name = deployment["metadata"]["name"]
        port = _probe_port(name, settings)
        container = _container(deployment)
        for probe, path in (("startupProbe", LIVENESS_PATH), ("livenessProbe", LIVENESS_PATH),
                            ("readinessProbe", READINESS_PATH)):
            get = container[probe]["httpGet"]
            assert get["path"] == path, (name, probe)
            assert _port(container, get["port"]) == port, (name, probe)
        notes = deployment["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert notes["prometheus.io/path"] == METRICS_PATH
        assert int(notes["prometheus.io/port"]) == port, name
    assert f"EXPOSE {settings.api.port} {settings.ops.port}" in DOCKERFILE


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_service_reaches_the_port_the_api_serves(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    api = r.get("Deployment", "bend-api")
    container = _container(api)
    (port,) = r.get("Service", "bend-api")["spec"]["ports"]
    assert _port(container, port["targetPort"]) == r.settings().api.port
    selector = r.get("Service", "bend-api")["spec"]["selector"]
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert not any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in r.of("Deployment") if d is not api)


def _archive_mounts(deployment: dict[str, Any], claim: str) -> list[tuple[str, bool]]:
    """(mount path, read-only) of each mount of the PersistentVolumeClaim `claim`."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    found = []
    for mount in _container(deployment).get("volumeMounts", []):
        pvc = volumes[mount["name"]].get("persistentVolumeClaim")
        if pvc and pvc["claimName"] == claim:
            found.append((mount["mountPath"],
                          bool(mount.get("readOnly")) or bool(pvc.get("readOnly"))))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_archiver_writes_the_archive_volume_and_only_the_api_reads_it(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    archive_dir = str(r.settings().archive_dir())
    (claim,) = r.of("PersistentVolumeClaim")
    name = claim["metadata"]["name"]
    archiver = r.get("Deployment", "bend-archiver")
    # Its root filesystem is read-only: BEND_ARCHIVE__DIR must be the volume, mounted writable.
    assert _archive_mounts(archiver, name) == [(archive_dir, False)]
    api = r.get("Deployment", "bend-api")
    assert _archive_mounts(api, name) == [(archive_dir, True)]
    api_volume = next(v for v in api["spec"]["template"]["spec"]["volumes"]
                      if v.get("persistentVolumeClaim", {}).get("claimName") == name)
    assert api_volume["persistentVolumeClaim"]["readOnly"] is True
    for deployment in r.of("Deployment"):
        if deployment not in (archiver, api):
            assert _archive_mounts(deployment, name) == [], deployment["metadata"]["name"]
    # Each segment is written by one archiver; a new pod starts once the old one is gone.
    assert archiver["spec"]["replicas"] == 1
    assert archiver["spec"]["strategy"] == {"type": "Recreate"}


def test_in_production_every_api_pod_reads_the_archive_on_whichever_node_it_runs(
        rendered: dict[str, Rendered]) -> None:
    (claim,) = rendered["production"].of("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert rendered["production"].get("Deployment", "bend-api")["spec"]["replicas"] > 1


def _literal_env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(deployment).get("env", []) if "value" in e}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_bend_and_keda_reach_the_strimzi_listener_as_it_expects(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    (kafka,) = r.of("Kafka")
    cluster = kafka["metadata"]["name"]
    bootstrap = r.settings().kafka.bootstrap
    host, port = bootstrap.rsplit(":", 1)
    assert host == f"{cluster}-kafka-bootstrap"  # Strimzi's Service name
    (listener,) = [li for li in kafka["spec"]["kafka"]["listeners"] if li["port"] == int(port)]
    assert listener["type"] == "internal"
    scram = listener.get("authentication", {}).get("type") == "scram-sha-512"
    want = "SASL_SSL" if listener["tls"] and scram else "SSL" if listener["tls"] else "PLAINTEXT"
    for deployment in r.of("Deployment"):
        env = {**r.env(), **_literal_env(deployment)}
        assert env.get("BEND_KAFKA__SECURITY_PROTOCOL", "PLAINTEXT") == want
        if listener["tls"]:  # the brokers' certificates are signed by Strimzi's cluster CA
            cafile = Path(env["BEND_KAFKA__SSL_CAFILE"])
            mounts = {m["name"]: m["mountPath"] for m in _container(deployment)["volumeMounts"]}
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
            (volume,) = [n for n, path in mounts.items() if Path(path) == cafile.parent]
            secret = volumes[volume]["secret"]
            assert secret["secretName"] == f"{cluster}-cluster-ca-cert"
            assert {"key": "ca.crt", "path": cafile.name} in secret["items"]
    for scaled in r.of("ScaledObject"):
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["metadata"]["bootstrapServers"] == bootstrap
        assert trigger["metadata"].get("tls", "disable") == ("enable" if listener["tls"]
                                                             else "disable")
        if scram:
            assert trigger["metadata"]["sasl"] == "scram_sha512"
            auth = r.get("TriggerAuthentication", trigger["authenticationRef"]["name"])
            params = {p["parameter"]: p for kind in ("secretTargetRef", "configMapTargetRef")
                      for p in auth["spec"].get(kind, [])}
            assert params["ca"]["name"] == f"{cluster}-cluster-ca-cert"
            user = r.get("ConfigMap", params["username"]["name"])["data"]["username"]
            assert user in r.names("KafkaUser") and params["password"]["name"] == user
    for obj in [*r.of("KafkaNodePool"), *r.of("KafkaTopic")]:
        assert obj["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_runs_the_local_stacks_line_in_kraft_mode_with_enough_brokers(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    (kafka,) = r.of("Kafka")
    version = kafka["spec"]["kafka"]["version"]
    assert version.split(".")[:2] == DevSettings().kafka_version.split(".")[:2]
    assert kafka["spec"]["kafka"]["metadataVersion"].startswith(".".join(version.split(".")[:2]))
    assert "zookeeper" not in kafka["spec"]
    pools = r.of("KafkaNodePool")
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    settings = r.settings()
    config = kafka["spec"]["kafka"]["config"]
    assert brokers >= settings.kafka.replication_factor
    assert controllers % 2 == 1  # a KRaft quorum
    assert config["auto.create.topics.enable"] is False
    assert config["min.insync.replicas"] == settings.kafka.min_insync_replicas
    assert settings.kafka.min_insync_replicas <= settings.kafka.replication_factor
    assert config["default.replication.factor"] == settings.kafka.replication_factor


def _worker(role: str, settings: Settings, tmp_path: Path) -> tuple[str, str, str]:
    """(consumer group, source topic, auto offset reset) of `role`, as the code builds them."""
    from streams.app import create_app

    settings = settings.model_copy(deep=True)
    settings.dev = DevSettings(state_dir=tmp_path)  # create_app makes Faust's data dir there
    app = create_app(role, settings)
    if role == "orchestrator":
        from streams.orchestrator import Orchestrator

        topic = Orchestrator(app, settings).commands.get_topic_name()
    else:
        from streams.executor import Executor

        topic = Executor(app, settings, "manifest-test").tasks.get_topic_name()
    return app.conf.id, topic, app.conf.consumer_auto_offset_reset


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("role", ["orchestrator", "executor"])
def test_keda_scales_each_role_on_the_lag_of_the_group_and_topic_it_consumes(
        overlay: str, role: str, rendered: dict[str, Rendered], tmp_path: Path) -> None:
    r = rendered[overlay]
    settings = r.settings()
    group, topic, reset = _worker(role, settings, tmp_path)
    scaled = r.get("ScaledObject", f"bend-{role}")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert (meta["consumerGroup"], meta["topic"], meta["offsetResetPolicy"]) == \
        (group, topic, reset)
    target = scaled["spec"]["scaleTargetRef"]["name"]
    assert " ".join(_container(r.get("Deployment", target))["command"]) == f"bend worker {role}"
    assert "replicas" not in r.get("Deployment", target)["spec"]  # KEDA owns it
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= settings.kafka.default_partitions


def test_the_local_overlay_reads_its_database_url_from_cloudnative_pg(
        rendered: dict[str, Rendered]) -> None:
    r = rendered["local"]
    (cluster,) = r.of("Cluster")
    bootstrap = cluster["spec"]["bootstrap"]["initdb"]
    for deployment in r.of("Deployment"):
        (env,) = [e for e in _container(deployment)["env"] if e["name"] == "BEND_DATABASE_URL"]
        ref = env["valueFrom"]["secretKeyRef"]
        # CloudNativePG writes `<cluster>-app` with a `uri` key for the initdb owner's database.
        assert ref == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
    assert bootstrap["database"] == bootstrap["owner"] == "bend"


def test_the_production_overlay_takes_postgres_by_url_from_its_secret(
        rendered: dict[str, Rendered]) -> None:
    r = rendered["production"]
    assert r.of("Cluster") == []
    for deployment in r.of("Deployment"):
        container = _container(deployment)
        assert "env" not in container or all(e["name"] != "BEND_DATABASE_URL"
                                             for e in container["env"])
        assert {"secretRef": {"name": "bend-secrets"}} in container["envFrom"]


def test_the_readme_commands_apply_the_overlays_that_exist() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    applied = re.findall(r"kubectl apply -k (\S+)", readme)
    assert applied, "README: no `kubectl apply -k` command"
    for path in applied:
        assert (PROJECT_ROOT / path / "kustomization.yaml").exists(), path
    for line in re.findall(r"^\s*(bend deploy .*)$", readme, re.M):
        args = shlex.split(line)[1:]
        assert CliRunner().invoke(cli, [*args[:2], "--help"]).exit_code == 0, line
