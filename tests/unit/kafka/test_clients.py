"""KafkaSettings' TLS and SASL fields: validated with a message that says what to fix, and
turned into the same connection by every client kind (bend.kafka.clients)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol
from pydantic import ValidationError

from bend.devstack.certs import LocalCerts, make_local_certs
from bend.kafka import clients
from bend.settings import KafkaSettings, Settings


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalCerts:
    return make_local_certs(tmp_path_factory.mktemp("certs"))


def sasl_ssl(certs: LocalCerts, **more: object) -> KafkaSettings:
    return KafkaSettings.model_validate({
        "bootstrap": "127.0.0.1:9093", "security_protocol": "SASL_SSL",
        "ssl_cafile": certs.ca, "ssl_certfile": certs.client_cert,
        "ssl_keyfile": certs.client_key, "sasl_username": "bend-api",
        "sasl_password": "s3cret", **more})


def test_plaintext_is_the_default_and_adds_nothing_but_the_address() -> None:
    kafka = KafkaSettings()
    assert clients.aiokafka_auth(kafka) == {"security_protocol": "PLAINTEXT"}
    assert clients.confluent_config(kafka) == {"bootstrap.servers": kafka.bootstrap,
                                               "security.protocol": "plaintext"}
    assert clients.faust_credentials(kafka) is None
    assert clients.ssl_context(kafka) is None


def test_settings_are_read_from_bend_kafka_variables(certs: LocalCerts,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SSL_CAFILE": str(certs.ca),
                        "SASL_USERNAME": "bend-executor", "SASL_PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"BEND_KAFKA__{name}", value)
    kafka = Settings().kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.ssl_cafile == certs.ca and kafka.sasl_password is not None
    assert "pw" not in repr(kafka)  # the password is a SecretStr: never in a log line


def test_sasl_ssl_gives_aiokafka_a_verifying_context_and_the_scram_login(
        certs: LocalCerts) -> None:
    auth = clients.aiokafka_auth(sasl_ssl(certs))
    context = auth.pop("ssl_context")
    assert auth == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "bend-api", "sasl_plain_password": "s3cret"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName",
                                                                  "bend-local-ca"),),)]


def test_confluent_config_names_the_same_files_and_login(certs: LocalCerts) -> None:
    config = clients.confluent_config(sasl_ssl(certs), {"client.id": "x"})
    assert config == {
        "bootstrap.servers": "127.0.0.1:9093", "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(certs.ca), "ssl.certificate.location": str(certs.client_cert),
        "ssl.key.location": str(certs.client_key), "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "bend-api", "sasl.password": "s3cret", "client.id": "x"}


def test_faust_credentials_become_the_same_aiokafka_keywords(certs: LocalCerts) -> None:
    creds = clients.faust_credentials(sasl_ssl(certs))
    assert isinstance(creds, SASLCredentials) and creds.protocol == AuthProtocol.SASL_SSL
    auth = dict(credentials_to_aiokafka_auth(creds))  # what Faust's driver passes aiokafka
    assert isinstance(auth.pop("ssl_context"), ssl.SSLContext)
    assert auth == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "bend-api", "sasl_plain_password": "s3cret"}
    plain = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="u",
                          sasl_password="p", sasl_mechanism="SCRAM-SHA-256")
    creds = clients.faust_credentials(plain)
    assert creds.protocol == AuthProtocol.SASL_PLAINTEXT and creds.ssl_context is None
    tls_only = clients.faust_credentials(KafkaSettings(security_protocol="SSL",
                                                       ssl_cafile=certs.ca))
    assert isinstance(tls_only, SSLCredentials) and tls_only.protocol == AuthProtocol.SSL


async def test_the_client_factories_pass_the_security_to_aiokafka(certs: LocalCerts) -> None:
    kafka = sasl_ssl(certs)
    consumer = clients.consumer(kafka, group_id=None)
    producer = clients.producer(kafka, acks="all")
    admin = clients.admin(kafka)
    client = clients.client(kafka)
    for made in (consumer._client, producer.client, admin._client, client):  # noqa: SLF001
        assert made._security_protocol == "SASL_SSL"  # noqa: SLF001
        assert made._sasl_mechanism == "SCRAM-SHA-512"  # noqa: SLF001
        assert made._sasl_plain_username == "bend-api"  # noqa: SLF001
        assert isinstance(made._ssl_context, ssl.SSLContext)  # noqa: SLF001


@pytest.mark.parametrize(("fields", "says"), [
    ({"ssl_cafile": "CA"}, "set BEND_KAFKA__SECURITY_PROTOCOL=SASL_SSL (or SSL)"),
    ({"security_protocol": "SSL", "ssl_certfile": "CERT"}, "needs both BEND_KAFKA__SSL_CERTFILE"),
    ({"security_protocol": "SSL", "ssl_cafile": "/nope/ca.pem"},
     "BEND_KAFKA__SSL_CAFILE=/nope/ca.pem: no such file"),
    ({"security_protocol": "SASL_SSL"}, "BEND_KAFKA__SASL_USERNAME and BEND_KAFKA__SASL_PASSWORD"),
    ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "are not both set"),
    ({"sasl_username": "u", "sasl_password": "p"},
     "sasl_username and sasl_password set but BEND_KAFKA__SECURITY_PROTOCOL is PLAINTEXT"),
    ({"security_protocol": "TLS"}, "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
    ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p",
      "sasl_mechanism": "SCRAM-SHA-1"}, "'SCRAM-SHA-512', 'SCRAM-SHA-256' or 'PLAIN'"),
])
def test_incomplete_security_settings_say_what_to_fix(
        certs: LocalCerts, fields: dict[str, str], says: str) -> None:
    real = {"CA": str(certs.ca), "CERT": str(certs.client_cert)}
    with pytest.raises(ValidationError) as err:
        KafkaSettings.model_validate({k: real.get(v, v) for k, v in fields.items()})
    assert says in str(err.value)


def test_a_client_key_that_does_not_match_its_certificate_fails_when_loaded(
        certs: LocalCerts, tmp_path: Path) -> None:
    other = make_local_certs(tmp_path)
    kafka = sasl_ssl(certs, ssl_keyfile=other.client_key)
    with pytest.raises(ssl.SSLError):
        clients.ssl_context(kafka)
