"""AES-256-GCM sealing of secret values, bound to where they are stored."""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bend.security.errors import InvalidKeyMaterial

__all__ = ["SecretBox", "Unsealable"]

_NONCE_BYTES = 12


class Unsealable(Exception):
    """A sealed value does not open with this key and context (stores turn it into a BendError)."""


class SecretBox:
    """Seals and opens values with one 32-byte key; `context` is authenticated, not encrypted."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise InvalidKeyMaterial("the secrets key", f"AES-256 needs 32 bytes, not {len(key)}")
        self._aead = AESGCM(key)
        # Stored beside each value so a changed key is told apart from a tampered row.
        self.fingerprint = hashlib.sha256(b"bend.secrets.key\x00" + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SecretBox(fingerprint={self.fingerprint})"

    def seal(self, value: str, context: str) -> bytes:
        """Nonce || ciphertext || tag of `value`; a fresh random nonce every time."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        """The value sealed under `context`, or Unsealable."""
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context.encode()).decode()
        except (InvalidTag, ValueError):
            raise Unsealable() from None
