"""Bend through a SASL_SSL listener: a one-node KRaft broker whose only client listener is TLS
(certificates made here, a client certificate required) with SCRAM-SHA-512 logins. The example
workflow runs end to end through it (Faust workers, aiokafka, confluent-kafka admin), the
triggers worker joins its group through it, and a wrong password or CA is refused, saying which
setting to fix.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bend.cli.demo import EXAMPLE
from bend.contracts.admin import ensure_topics
from bend.core.events import RunCompleted, StepSucceeded
from bend.devstack.certs import make_local_certs
from bend.devstack.cluster import Cluster, running_cluster
from bend.devstack.engine import Engine, running_engine
from bend.devstack.secure import SecureListener
from bend.kafka.errors import KafkaRefused
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.settings import KafkaSettings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER = "bend"


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> SecureListener:
    return SecureListener.make(tmp_path_factory.mktemp("tls"), [USER])


@pytest.fixture(scope="module")
def cluster(listener: SecureListener) -> Iterator[Cluster]:
    with running_cluster(name=f"tls{uuid.uuid4().hex[:8]}", size=1, secure=listener,
                         timeout_s=90) as c:
        yield c


@pytest.fixture(scope="module")
def engine(cluster: Cluster, listener: SecureListener) -> Iterator[Engine]:
    kafka = listener.client(cluster.bootstrap, USER)
    # As BEND_KAFKA__* variables for the worker processes: the password in clear.
    overrides = {**kafka.model_dump(include={"bootstrap", "security_protocol", "ssl_cafile",
                                             "ssl_certfile", "ssl_keyfile", "sasl_mechanism",
                                             "sasl_username"}),
                 "sasl_password": listener.users[USER], "replication_factor": 1,
                 "min_insync_replicas": 1}
    with running_engine(kafka=overrides) as engine:
        yield engine


def _with(settings_kafka: KafkaSettings, **changes: object) -> KafkaSettings:
    return KafkaSettings.model_validate({**settings_kafka.model_dump(), **changes})


async def test_the_example_workflow_runs_end_to_end_over_sasl_ssl(engine: Engine,
                                                                  cluster: Cluster) -> None:
    kafka = engine.settings.kafka
    assert (kafka.security_protocol, kafka.bootstrap) == ("SASL_SSL", cluster.bootstrap)
    definition = yaml.safe_load(EXAMPLE.read_text())
    start = engine.start_run(definition, {"topic": "durable execution",
                                      "llm_base_url": engine.llm.base_url})
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:
        await producer.send(start)
        done = await watcher.wait_finished([start.run_id], timeout_s=90)
    assert isinstance(done[start.run_id], RunCompleted), done[start.run_id]
    succeeded = Counter(e.step_id for e in watcher.events[start.run_id]
                        if isinstance(e, StepSucceeded))
    assert {"plan", "search", "research", "report"} <= set(succeeded), succeeded
    assert all(n == 1 for n in succeeded.values()), succeeded


def test_the_triggers_worker_joins_its_group_over_sasl_ssl(engine: Engine) -> None:
    engine.workers.start("triggers", wait=True, timeout_s=60)


async def test_a_wrong_password_is_refused_naming_the_setting(engine: Engine) -> None:
    wrong = engine.settings.model_copy(update={"kafka": _with(engine.settings.kafka,
                                                              sasl_password="not-it")})
    with pytest.raises(KafkaRefused) as err:
        await RecordProducer(wrong).start()
    assert "SASL login as 'bend' with SCRAM-SHA-512 failed" in str(err.value)
    assert "BEND_KAFKA__SASL_PASSWORD" in str(err.value)
    began = time.monotonic()
    with pytest.raises(KafkaRefused, match="BEND_KAFKA__SASL_PASSWORD"):
        ensure_topics(wrong)  # what every worker does first: fails at once, not in 30 s
    assert time.monotonic() - began < 10


def test_a_worker_with_a_wrong_password_exits_saying_so(engine: Engine) -> None:
    worker = engine.workers.start("executor", wait=False)
    worker.stop()  # the right one; now one with the wrong password in its environment
    engine.workers.processes.remove(worker)
    env = dict(engine.workers.env)
    engine.workers.env["BEND_KAFKA__SASL_PASSWORD"] = "not-it"
    try:
        worker = engine.workers.start("executor", wait=False)
        worker.process.wait(timeout=60)
    finally:
        engine.workers.env = env
        engine.workers.processes.remove(worker)
    assert worker.process.returncode != 0
    assert "refused this client: SASL login as 'bend'" in worker.log_path.read_text()


async def test_a_broker_certificate_from_another_ca_is_refused(engine: Engine,
                                                               tmp_path: Path) -> None:
    other = make_local_certs(tmp_path)
    wrong = engine.settings.model_copy(update={"kafka": _with(engine.settings.kafka,
                                                              ssl_cafile=other.ca)})
    with pytest.raises(KafkaRefused) as err:
        await RecordProducer(wrong).start()
    assert "TLS handshake" in str(err.value) and "CERTIFICATE_VERIFY_FAILED" in str(err.value)
    assert "BEND_KAFKA__SSL_CAFILE" in str(err.value)


def test_the_broker_has_no_plaintext_client_listener(cluster: Cluster) -> None:
    props = (cluster.nodes[0].properties).read_text()
    assert f"listeners=SASL_SSL://127.0.0.1:{cluster.nodes[0].port}," in props
    assert "PLAINTEXT://" not in props.replace("CONTROLLER://", "")
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL" in props
    plain = KafkaSettings(bootstrap=cluster.bootstrap)
    from bend.devstack.kafka import answering

    assert not answering(cluster.bootstrap, 2.0, plain)
    assert get_settings().kafka.bootstrap != cluster.bootstrap  # not the normal local stack
