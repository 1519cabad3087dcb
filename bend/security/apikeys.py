"""API key format and hashing: `bend_<key_id>_<secret>`, of which only an HMAC is stored.

The secret is 256 random bits, so a fast keyed hash suffices (a slow KDF such as scrypt
protects guessable passwords, not random keys); the pepper is a server key kept out of the
database, so a leaked table alone cannot check guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from bend.security.errors import InvalidApiKey

__all__ = [
    "PREFIX", "ParsedKey", "generate_key", "looks_like_key", "parse_key", "hash_secret",
    "secret_matches",
]

PREFIX = "bend"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A presented key split into its public id and its secret."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedKey(key_id={self.key_id!r}, secret=***)"


def generate_key() -> tuple[str, ParsedKey]:
    """A new key: the full text to hand out once, and its parts."""
    parsed = ParsedKey(key_id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))
    return f"{PREFIX}_{parsed.key_id}_{parsed.secret}", parsed


def looks_like_key(text: str) -> bool:
    """Whether `text` has the API key prefix (else it may be a JWT)."""
    return text.startswith(f"{PREFIX}_")


def parse_key(text: str) -> ParsedKey:
    """Split a presented key, or raise InvalidApiKey."""
    parts = text.strip().split("_", 2)  # the secret itself may contain `_`
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidApiKey()
    _, key_id, secret = parts
    if not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        raise InvalidApiKey()
    return ParsedKey(key_id=key_id, secret=secret)


def hash_secret(pepper: bytes, parsed: ParsedKey) -> str:
    """HMAC-SHA256 of the key's id and secret under the server pepper, as hex."""
    message = f"{parsed.key_id}:{parsed.secret}".encode()
    return hmac.new(pepper, message, hashlib.sha256).hexdigest()


def secret_matches(pepper: bytes, parsed: ParsedKey, stored_hash: str) -> bool:
    """Whether the presented secret hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(hash_secret(pepper, parsed), stored_hash)
