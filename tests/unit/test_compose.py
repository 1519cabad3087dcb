"""docker-compose.yml: it parses, its BEND_* names are real settings, Bend reaches its Kafka."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from bend.settings import PROJECT_ROOT, KafkaSettings, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
BEND = {"api": "bend api serve", "orchestrator": "bend worker orchestrator",
        "executor": "bend worker executor", "triggers": "bend worker triggers",
        "projector": "bend projector run", "archiver": "bend archive run",
        "notifier": "bend notifier run", "chainer": "bend chainer run"}


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):  # the KEY=value spelling
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _setting(name: str) -> Any:
    """The Settings field a BEND_ variable sets, or None when it sets nothing."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("BEND_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if i < len(parts) - 1:
            if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
                return None
            model = field.annotation
    return field


def test_the_file_has_kafka_postgres_and_every_bend_service() -> None:
    assert set(SERVICES) == {"kafka", "postgres", *BEND}
    assert SERVICES["kafka"]["image"] == "apache/kafka:3.9.2"
    assert SERVICES["postgres"]["image"] == "postgres:16"


def test_kafka_runs_in_kraft_mode_as_a_single_node() -> None:
    env = _env("kafka")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "ZOOKEEPER" not in " ".join(env)


@pytest.mark.parametrize("service, command", BEND.items())
def test_bend_services_run_their_command_from_the_deploy_image(service: str, command: str) -> None:
    spec = SERVICES[service]
    assert " ".join(spec["command"]) == command
    assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
    assert {"kafka", "postgres"} <= set(spec["depends_on"])


def test_every_bend_variable_names_a_real_setting() -> None:
    names = {name for service in SERVICES for name in _env(service) if name.startswith("BEND_")}
    assert names, "no BEND_ variables: the services would run on local defaults"
    unknown = sorted(name for name in names if _setting(name) is None)
    assert unknown == [], f"not fields of bend.settings.Settings: {unknown}"


def test_the_checker_rejects_a_name_settings_do_not_have() -> None:
    assert _setting("BEND_KAFKA__BOOTSTRAPS") is None
    assert _setting("BEND_TENANT__X") is None
    assert _setting("BEND_KAFKA__BOOTSTRAP") is not None


@pytest.mark.parametrize("service", BEND)
def test_settings_read_from_the_services_environment_point_at_the_compose_stack(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(service).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka.bootstrap == "kafka:9092"
    assert urlsplit(settings.database.url or "").hostname == "postgres"


def _listeners(value: str) -> dict[str, str]:
    return dict(item.split("://", 1) for item in value.split(","))


@pytest.mark.parametrize("service", BEND)
def test_bend_services_use_the_listener_kafka_advertises_on_the_compose_network(
    service: str,
) -> None:
    kafka = _env("kafka")
    advertised = _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bootstrap = _env(service)["BEND_KAFKA__BOOTSTRAP"]
    (name,) = [n for n, address in advertised.items() if address == bootstrap]
    host, port = bootstrap.rsplit(":", 1)
    assert host == "kafka"  # the service name: resolvable by every container
    assert _listeners(kafka["KAFKA_LISTENERS"])[name] == f":{port}"
    assert name != kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]


def test_the_database_url_matches_postgres_credentials() -> None:
    pg = _env("postgres")
    for service in BEND:
        url = urlsplit(_env(service)["BEND_DATABASE_URL"])
        assert (url.username, url.password, url.path.lstrip("/"), url.port) == (
            pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"], 5432)


def test_published_ports_bind_to_loopback_only() -> None:
    for name, spec in SERVICES.items():
        for mapping in spec.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping}"


def test_the_host_listener_is_published_where_bend_looks_by_default() -> None:
    default = KafkaSettings().bootstrap  # the CLI on this machine, with no BEND_ variables
    advertised = _listeners(_env("kafka")["KAFKA_ADVERTISED_LISTENERS"])
    assert default in advertised.values()
    assert any(str(m).startswith(f"{default}:") for m in SERVICES["kafka"]["ports"])


@pytest.mark.parametrize("service, command", BEND.items())
def test_each_service_command_is_a_real_bend_command(service: str, command: str) -> None:
    from click.testing import CliRunner

    from bend.cli.main import cli

    result = CliRunner().invoke(cli, [*command.split()[1:], "--help"])
    assert result.exit_code == 0, (service, result.output)


@pytest.mark.parametrize("service", sorted(BEND))
def test_each_service_is_checked_on_the_port_and_path_it_serves_readiness_on(
        service: str) -> None:
    from bend.ops.server import READINESS_PATH  # noqa: PLC0415 - only this test needs it

    env = _env(service)
    check = " ".join(SERVICES[service]["healthcheck"]["test"])
    port = env["BEND_API__PORT"] if service == "api" else env["BEND_OPS__PORT"]
    assert f"http://127.0.0.1:{port}{READINESS_PATH}" in check
    if service != "api":
        assert env["BEND_OPS__HOST"] == "0.0.0.0"  # reachable from the container's health check


def test_the_archiver_writes_the_archive_volume_and_the_api_reads_it() -> None:
    archiver, api = SERVICES["archiver"], SERVICES["api"]
    assert archiver["volumes"] == ["archive:/var/lib/bend-archive"]
    assert api["volumes"] == ["archive:/var/lib/bend-archive:ro"]
    assert _env("archiver")["BEND_ARCHIVE__DIR"] == _env("api")["BEND_ARCHIVE__DIR"] == \
        "/var/lib/bend-archive"
