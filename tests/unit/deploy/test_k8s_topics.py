"""Strimzi KafkaTopics are generated from the topics as code and match what the pods read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bend.contracts.topics import topic_specs
from bend.deploy.cli import deploy
from bend.deploy.envfile import read_env, settings_from_env
from bend.deploy.errors import UnknownSetting
from bend.deploy.topics import TOPICS_FILE, kafka_topics, overlay_topics
from bend.settings import PROJECT_ROOT

from .conftest import K8S, OVERLAYS, Rendered


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_committed_topics_file_is_what_the_generator_makes(overlay: str) -> None:
    path = K8S / "overlays" / overlay
    assert (path / TOPICS_FILE).read_text() == overlay_topics(path), \
        f"run `bend deploy topics deploy/k8s/overlays/{overlay}`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_topics_are_the_topics_the_pods_settings_need(
        overlay: str, rendered: dict[str, Rendered]) -> None:
    r = rendered[overlay]
    settings = r.settings()
    (kafka,) = r.of("Kafka")
    want = kafka_topics(settings, kafka["metadata"]["name"])
    have = [{k: v for k, v in t.items()} for t in r.of("KafkaTopic")]
    for t in have:
        t["metadata"] = {k: v for k, v in t["metadata"].items() if k != "namespace"}
    assert sorted(have, key=str) == sorted(want, key=str)
    assert {t["spec"]["topicName"] for t in have} == {s.name for s in topic_specs(settings)}


def test_a_topic_has_the_layout_bend_verifies_at_startup(rendered: dict[str, Rendered]) -> None:
    settings = rendered["production"].settings()
    topics = {t["spec"]["topicName"]: t["spec"] for t in rendered["production"].of("KafkaTopic")}
    for spec in topic_specs(settings):
        assert topics[spec.name]["partitions"] == spec.partitions == 12
        assert topics[spec.name]["replicas"] == spec.replication_factor == 3
        assert topics[spec.name]["config"]["min.insync.replicas"] == "2"
        assert topics[spec.name]["config"] == spec.all_configs()  # bend.contracts.admin checks
    assert topics["bend.timers"]["config"]["cleanup.policy"] == "compact"


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "k8s"
    shutil.copytree(K8S, root)
    return root / "overlays" / "production"


def test_check_fails_when_the_settings_changed_and_writing_fixes_it(tmp_path: Path) -> None:
    overlay = _copy_tree(tmp_path)
    runner = CliRunner()
    assert runner.invoke(deploy, ["topics", str(overlay), "--check"]).exit_code == 0
    env = overlay / "bend.env"
    env.write_text(env.read_text().replace("PARTITIONS=12", "PARTITIONS=6"))
    stale = runner.invoke(deploy, ["topics", str(overlay), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert runner.invoke(deploy, ["topics", str(overlay)]).exit_code == 0
    assert "partitions: 6\n" in (overlay / TOPICS_FILE).read_text()
    assert runner.invoke(deploy, ["topics", str(overlay), "--check"]).exit_code == 0


def test_an_env_file_with_a_name_settings_do_not_have_is_refused(tmp_path: Path) -> None:
    env = tmp_path / "bend.env"
    env.write_text("BEND_KAFKA__PARTITIONS=3\n")
    with pytest.raises(UnknownSetting, match="BEND_KAFKA__PARTITIONS"):
        read_env([env])


def test_settings_from_env_files_ignore_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEND_KAFKA__TOPIC_PREFIX", "elsewhere")
    monkeypatch.setenv("BEND_KAFKA__DEFAULT_PARTITIONS", "2")
    settings = settings_from_env({"BEND_KAFKA__REPLICATION_FACTOR": "3"})
    assert (settings.kafka.topic_prefix, settings.kafka.default_partitions,
            settings.kafka.replication_factor) == ("bend", 4, 3)


def test_python_m_runs_the_same_generator() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bend.deploy.topics",
                           "deploy/k8s/overlays/local", "--check"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "is up to date" in proc.stdout
