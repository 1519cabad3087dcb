"""Key material: from settings, or generated once into the state dir with 0600 permissions."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bend.security.errors import InvalidKeyMaterial
from bend.settings import Settings

__all__ = ["SecurityKeys", "load_keys", "load_or_create_key"]

_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class SecurityKeys:
    """The three server keys: token signing, API key pepper, secrets encryption."""

    jwt_secret: bytes
    api_key_pepper: bytes
    secrets_key: bytes

    def __repr__(self) -> str:
        return "SecurityKeys(***)"  # never print key bytes


def load_or_create_key(path: Path, nbytes: int = _KEY_BYTES) -> bytes:
    """The key in `path` (base64), creating it with `nbytes` random bytes and mode 0600 if absent.

    Safe when several processes start at once: the file appears whole, by a hard link that
    fails if another process made it first, and everyone then reads the same key.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(nbytes)).decode() + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won; use its key
        finally:
            tmp.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InvalidKeyMaterial(
            str(path), f"its mode is {mode:o}, readable by others; run `chmod 600 {path}`"
        )
    return _decode(str(path), path.read_text().strip(), nbytes)


def _decode(what: str, text: str, nbytes: int) -> bytes:
    """Base64 `text` as exactly `nbytes` bytes, or InvalidKeyMaterial."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyMaterial(what, "it is not base64") from None
    if len(raw) != nbytes:
        raise InvalidKeyMaterial(what, f"it holds {len(raw)} bytes, not {nbytes}")
    return raw


def load_keys(settings: Settings) -> SecurityKeys:
    """The keys from BEND_SECURITY__* when set, else from key files under the state dir."""
    sec = settings.security
    folder = Path(settings.dev.state_dir) / "security"
    if sec.jwt_secret is not None:
        jwt_secret = sec.jwt_secret.get_secret_value().encode()
        if len(jwt_secret) < _KEY_BYTES:
            raise InvalidKeyMaterial(
                "BEND_SECURITY__JWT_SECRET", f"HS256 needs at least {_KEY_BYTES} bytes"
            )
    else:
        jwt_secret = load_or_create_key(folder / "jwt.key")
    if sec.api_key_pepper is not None:
        pepper = sec.api_key_pepper.get_secret_value().encode()
        if len(pepper) < 16:
            raise InvalidKeyMaterial("BEND_SECURITY__API_KEY_PEPPER", "it needs 16 bytes or more")
    else:
        pepper = load_or_create_key(folder / "api_key_pepper.key")
    if sec.secrets_key is not None:
        secrets_key = _decode(
            "BEND_SECURITY__SECRETS_KEY", sec.secrets_key.get_secret_value(), _KEY_BYTES
        )
    else:
        secrets_key = load_or_create_key(sec.secrets_key_path or folder / "secrets.key")
    return SecurityKeys(jwt_secret=jwt_secret, api_key_pepper=pepper, secrets_key=secrets_key)
