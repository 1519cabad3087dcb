"""Every Kafka client Bend makes, configured from one `KafkaSettings` (address, TLS, SASL).

Nothing else constructs a client: aiokafka consumers, producers and admin clients, confluent-kafka
admin clients and producers, and Faust's broker credentials all come from here, so a TLS or SASL
setting reaches every connection (tests/unit/test_kafka_clients_only_here.py checks it).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

from bend.kafka.errors import KafkaRefused, KafkaUnavailable
from bend.settings import KafkaSettings

if TYPE_CHECKING:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from faust.auth import Credentials

__all__ = [
    "admin", "aiokafka_auth", "client", "refusal", "refuse_early", "unavailable", "confluent_admin",
    "confluent_config",
    "confluent_producer", "consumer", "faust_credentials", "faust_options", "producer",
    "ssl_context",
]


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL: brokers verified (name included) against
    `ssl_cafile` or the system's CAs, the client certificate loaded if one is set."""
    if not kafka.uses_ssl:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile is not None:
        context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile))
    return context


def aiokafka_auth(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka's security keywords (the same for consumers, producers and admin clients)."""
    auth: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.uses_ssl:
        auth["ssl_context"] = ssl_context(kafka)
    if kafka.uses_sasl:
        auth["sasl_mechanism"] = kafka.sasl_mechanism
        auth["sasl_plain_username"] = kafka.sasl_username
        auth["sasl_plain_password"] = (kafka.sasl_password.get_secret_value()
                                       if kafka.sasl_password else None)
    return auth


def _aiokafka(kafka: KafkaSettings, options: Mapping[str, Any]) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap, **aiokafka_auth(kafka), **options}


def consumer(kafka: KafkaSettings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer of `topics` (none: assign later); `options` as aiokafka takes them."""
    return AIOKafkaConsumer(*topics, **_aiokafka(kafka, options))


def producer(kafka: KafkaSettings, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer; `options` as aiokafka takes them (acks, linger_ms, ...)."""
    return AIOKafkaProducer(**_aiokafka(kafka, options))


def admin(kafka: KafkaSettings, **options: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client."""
    return AIOKafkaAdminClient(**_aiokafka(kafka, options))


def client(kafka: KafkaSettings, **options: Any) -> AIOKafkaClient:
    """A bare aiokafka client (metadata only: readiness checks)."""
    return AIOKafkaClient(**_aiokafka(kafka, options))


def confluent_config(kafka: KafkaSettings, options: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """A librdkafka configuration (`bootstrap.servers`, `security.protocol`, `ssl.*`,
    `sasl.*`) with `options` added."""
    config: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap,
                              "security.protocol": kafka.security_protocol.lower()}
    if kafka.uses_ssl:
        if kafka.ssl_cafile is not None:
            config["ssl.ca.location"] = str(kafka.ssl_cafile)
        if kafka.ssl_certfile is not None:
            config["ssl.certificate.location"] = str(kafka.ssl_certfile)
            config["ssl.key.location"] = str(kafka.ssl_keyfile)
    if kafka.uses_sasl:
        config["sasl.mechanisms"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username
        config["sasl.password"] = (kafka.sasl_password.get_secret_value()
                                   if kafka.sasl_password else None)
    return {**config, **(options or {})}


def confluent_admin(kafka: KafkaSettings,
                    options: Mapping[str, Any] | None = None) -> AdminClient:
    """A confluent-kafka AdminClient."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(confluent_config(kafka, options))


def confluent_producer(kafka: KafkaSettings,
                       options: Mapping[str, Any] | None = None) -> Producer:
    """A confluent-kafka Producer (transactions: the recovery benchmark)."""
    from confluent_kafka import Producer

    return Producer(confluent_config(kafka, options))


def faust_credentials(kafka: KafkaSettings) -> Credentials | None:
    """Faust's `broker_credentials`: None for PLAINTEXT; SSL or SASL (with TLS for SASL_SSL)."""
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(kafka)
    if kafka.uses_sasl:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        # SASLCredentials is SASL_SSL exactly when given a TLS context.
        return SASLCredentials(username=kafka.sasl_username, password=password,
                               mechanism=kafka.sasl_mechanism, ssl_context=context)
    if context is not None:
        return SSLCredentials(context)
    return None


def faust_options(kafka: KafkaSettings) -> dict[str, Any]:
    """`faust.App` keywords: `broker` (the bootstrap servers) and `broker_credentials`."""
    return {"broker": f"kafka://{kafka.bootstrap}", "broker_credentials": faust_credentials(kafka)}


async def refusal(kafka: KafkaSettings, timeout_s: float = 5.0) -> str | None:
    """Why the brokers refuse these settings' TLS handshake or SASL login, saying which setting
    to fix; None if the first broker that answers accepts them (or none answers).

    aiokafka reports both only as "Unable to bootstrap"; a single connection tells them apart.
    """
    auth = aiokafka_auth(kafka)
    for address in kafka.bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000),
                                     client_id=f"{kafka.client_id}-check", **auth)
        except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as err:
            return (f"SASL login as {kafka.sasl_username!r} with {kafka.sasl_mechanism} failed "
                    f"({err}); check BEND_KAFKA__SASL_USERNAME, BEND_KAFKA__SASL_PASSWORD and "
                    "BEND_KAFKA__SASL_MECHANISM")
        except ssl.SSLError as err:
            return (f"TLS handshake with {address} failed ({err.reason or err}); check "
                    "BEND_KAFKA__SSL_CAFILE (the CA that signed the brokers' certificates) and, "
                    "if the brokers require one, BEND_KAFKA__SSL_CERTFILE/SSL_KEYFILE")
        except Exception:  # noqa: S112 - not answering is not a refusal; try the next broker
            continue
        conn.close()
        return None
    return None


async def unavailable(kafka: KafkaSettings, detail: str) -> KafkaUnavailable:
    """The error for a client that could not start: KafkaRefused when the brokers refuse its
    TLS or login (the cause named), else KafkaUnavailable with `detail`."""
    why = await refusal(kafka) if kafka.security_protocol != "PLAINTEXT" else None
    return KafkaRefused(kafka.bootstrap, why) if why else KafkaUnavailable(kafka.bootstrap, detail)


def refuse_early(kafka: KafkaSettings) -> None:
    """Raise KafkaRefused if the brokers refuse these settings' TLS or login (blocking; any
    thread, a running loop or not): a worker fails at once, saying what to fix, instead of
    timing out on its first request."""
    if kafka.security_protocol == "PLAINTEXT":
        return
    found: list[str | None] = [None]

    def ask() -> None:
        found[0] = asyncio.run(refusal(kafka))

    thread = threading.Thread(target=ask, name="bend-kafka-refusal", daemon=True)
    thread.start()
    thread.join()
    if found[0]:
        raise KafkaRefused(kafka.bootstrap, found[0])
