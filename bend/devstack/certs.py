"""Throwaway PEM certificates for a local TLS broker: a CA, a broker and a client certificate.

Made with `cryptography` (already a dependency, for secrets at rest); for tests and local use
only: keys are unencrypted, valid a day, and the broker's names are 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalCerts", "make_local_certs"]


@dataclass(frozen=True)
class LocalCerts:
    """Where the PEM files are: the CA, the broker's key and chain, the client's cert and key."""

    ca: Path
    broker_keystore: Path  # private key (PKCS#8) then certificate: Kafka's PEM keystore file
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
           issuer: str, *, ca: bool = False, sans: list[x509.GeneralName] | None = None
           ) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        # A broker's certificate also serves it as a client (to itself, inter-broker).
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_local_certs(directory: Path, client: str = "bend-client") -> LocalCerts:
    """Write a fresh CA, a broker certificate for 127.0.0.1/localhost and a client
    certificate named `client` under `directory` (0600 keys); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("bend-local-ca", ca_key, ca_key, "bend-local-ca", ca=True)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker = _issue("localhost", broker_key, ca_key, "bend-local-ca", sans=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue(client, client_key, ca_key, "bend-local-ca")
    paths = LocalCerts(ca=directory / "ca.pem", broker_keystore=directory / "broker.pem",
                       client_cert=directory / "client.pem",
                       client_key=directory / "client.key")
    paths.ca.write_bytes(_cert_pem(ca))
    for path, data in ((paths.broker_keystore, _key_pem(broker_key) + _cert_pem(broker)),
                       (paths.client_key, _key_pem(client_key))):
        path.touch(mode=0o600)
        path.write_bytes(data)
    paths.client_cert.write_bytes(_cert_pem(client_cert))
    return paths
