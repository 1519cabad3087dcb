"""A SASL_SSL client listener for a local Kafka node: TLS with throwaway certificates (a client
certificate required too) and SCRAM-SHA-512 users created when the node is formatted.

    listener = SecureListener.make(directory, ["bend"])
    with running_cluster(settings, "tls", size=1, secure=listener) as cluster:
        kafka = listener.client(cluster.bootstrap, "bend")   # KafkaSettings for a client

Only the KRaft controller listener stays PLAINTEXT (127.0.0.1, controllers only); brokers talk to
each other over SASL_SSL as the `admin` user, a super user.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bend.devstack.certs import LocalCerts, make_local_certs
from bend.settings import KafkaSettings

__all__ = ["ADMIN", "MECHANISM", "SecureListener"]

ADMIN = "admin"  # the brokers' own user (inter-broker), a super user when ACLs are on
MECHANISM = "SCRAM-SHA-512"
_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required"


def _inline(pem: str) -> str:
    """A PEM value on one server.properties line (Java's Properties turns `\\n` back)."""
    return pem.strip().replace("\n", "\\n")


@dataclass(frozen=True)
class SecureListener:
    """Certificates, SCRAM users (name -> password) and whether ACLs are enforced."""

    certs: LocalCerts
    users: Mapping[str, str] = field(default_factory=dict)
    # StandardAuthorizer on, nothing allowed without an ACL (`admin` is a super user).
    authorizer: bool = False

    @classmethod
    def make(cls, directory: Path, users: Iterable[str], *, authorizer: bool = False
             ) -> SecureListener:
        """Fresh certificates under `directory` and a random password for each user and admin."""
        names = [ADMIN, *(u for u in users if u != ADMIN)]
        return cls(make_local_certs(directory),
                   {name: secrets.token_urlsafe(18) for name in names}, authorizer)

    def properties(self, port: int, controller_port: int) -> dict[str, str]:
        """The node's listener properties (they replace the PLAINTEXT client listener)."""
        key, chain = self.certs.broker_keystore.read_text().split("-----END PRIVATE KEY-----")
        props = {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config":
                f'{_JAAS} username="{ADMIN}" password="{self.users[ADMIN]}";',
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": _inline(key + "-----END PRIVATE KEY-----"),
            "ssl.keystore.certificate.chain": _inline(chain),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": _inline(self.certs.ca.read_text()),
            "ssl.client.auth": "required",
        }
        if self.authorizer:
            props |= {"authorizer.class.name":
                      "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                      # ANONYMOUS: the brokers' requests over the PLAINTEXT controller
                      # listener (loopback, controllers only); the SASL_SSL client listener
                      # never has it.
                      "super.users": f"User:{ADMIN};User:ANONYMOUS",
                      "allow.everyone.if.no.acl.found": "false"}
        return props

    def format_args(self) -> list[str]:
        """`StorageTool format` arguments that create every user's SCRAM credential."""
        return [arg for name, password in self.users.items()
                for arg in ("--add-scram", f"{MECHANISM}=[name={name},password={password}]")]

    def client(self, bootstrap: str, user: str, password: str | None = None) -> KafkaSettings:
        """Client settings for `user` (its own password unless `password` is given)."""
        return KafkaSettings.model_validate({
            "bootstrap": bootstrap, "security_protocol": "SASL_SSL",
            "ssl_cafile": self.certs.ca, "ssl_certfile": self.certs.client_cert,
            "ssl_keyfile": self.certs.client_key, "sasl_mechanism": MECHANISM,
            "sasl_username": user,
            "sasl_password": self.users[user] if password is None else password})

    def client_env(self, user: str) -> dict[str, str]:
        """The same settings as BEND_KAFKA__* variables, for worker processes."""
        kafka = self.client("unused", user)
        return {"BEND_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol,
                "BEND_KAFKA__SSL_CAFILE": str(kafka.ssl_cafile),
                "BEND_KAFKA__SSL_CERTFILE": str(kafka.ssl_certfile),
                "BEND_KAFKA__SSL_KEYFILE": str(kafka.ssl_keyfile),
                "BEND_KAFKA__SASL_MECHANISM": kafka.sasl_mechanism,
                "BEND_KAFKA__SASL_USERNAME": user,
                "BEND_KAFKA__SASL_PASSWORD": self.users[user]}
