"""Typed security errors; each carries the HTTP status (and headers) the API answers with."""

from __future__ import annotations

import math

from bend.core.errors import BendError

__all__ = [
    "SecurityError", "Unauthenticated", "MissingCredentials", "InvalidApiKey", "RevokedApiKey",
    "ExpiredApiKey", "InvalidToken", "ExpiredToken", "BadTokenSignature", "WrongTokenIssuer",
    "WrongTokenAudience", "PermissionDenied", "NotInProject", "RateLimited", "BodyTooLarge",
    "WebhookError", "BadSignature", "StaleTimestamp", "ReplayedDelivery", "MissingHeader",
    "UnknownSecret", "InvalidSecretName", "SecretUndecryptable", "InvalidKeyMaterial",
    "UnknownApiKey", "InvalidRole",
]


class SecurityError(BendError):
    """Root of security errors; `status` and `headers` are what the HTTP answer carries."""

    status: int = 400

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (`WWW-Authenticate`, `Retry-After`)."""
        return {}


# --- authentication (401) -------------------------------------------------------------------


class Unauthenticated(SecurityError):
    """The request proves no identity; every 401 of the API is one of these."""

    status = 401

    @property
    def headers(self) -> dict[str, str]:
        """Tell clients which scheme to use (RFC 9110 §11.6.1)."""
        return {"WWW-Authenticate": 'Bearer realm="bend"'}


class MissingCredentials(Unauthenticated):
    """No `Authorization: Bearer ...` header (nor `X-Api-Key`)."""

    def __init__(self) -> None:
        super().__init__(
            "no credentials; send `Authorization: Bearer <api key or token>` "
            "(create a key with `bend keys create`)"
        )


class InvalidApiKey(Unauthenticated):
    """The API key is malformed, unknown, or its secret is wrong (deliberately not told apart)."""

    def __init__(self) -> None:
        super().__init__("the API key is not valid; check it was copied whole, or create a new one")


class RevokedApiKey(Unauthenticated):
    """The API key was revoked (only said to holders of the right secret)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} was revoked; ask an admin of the project for a new one")
        self.key_id = key_id


class ExpiredApiKey(Unauthenticated):
    """The API key's expiry has passed."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} has expired; ask an admin of the project for a new one")
        self.key_id = key_id


class InvalidToken(Unauthenticated):
    """The access token cannot be read or lacks a required claim."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the access token is not valid ({reason}); request a new token")
        self.reason = reason


class ExpiredToken(InvalidToken):
    """The access token's `exp` has passed."""

    def __init__(self) -> None:
        super().__init__("expired")


class BadTokenSignature(InvalidToken):
    """The access token was not signed with this server's secret."""

    def __init__(self) -> None:
        super().__init__("signature does not match; it was issued by another server or altered")


class WrongTokenIssuer(InvalidToken):
    """The access token's `iss` is not this server's issuer."""

    def __init__(self, expected: str) -> None:
        super().__init__(f"issuer is not {expected!r}")


class WrongTokenAudience(InvalidToken):
    """The access token's `aud` does not include this server's audience."""

    def __init__(self, expected: str) -> None:
        super().__init__(f"audience is not {expected!r}")


# --- authorisation and isolation ------------------------------------------------------------


class PermissionDenied(SecurityError):
    """The principal's role does not grant the permission."""

    status = 403

    def __init__(self, role: str, permission: str, allowed: list[str]) -> None:
        super().__init__(
            f"role {role!r} may not {permission}; it needs one of {', '.join(allowed)} "
            "(ask an admin of the project for a key with such a role)"
        )
        self.role = role
        self.permission = permission


class NotInProject(SecurityError):
    """A resource of another project was asked for; answered as 404 so its id does not leak."""

    code = "not_found"
    status = 404

    def __init__(self, kind: str, resource_id: str) -> None:
        super().__init__(f"{kind} {resource_id} not found")
        self.kind = kind
        self.resource_id = resource_id


# --- limits ---------------------------------------------------------------------------------


class RateLimited(SecurityError):
    """Too many requests from one API key or client address."""

    status = 429

    def __init__(self, scope: str, retry_after_s: float) -> None:
        super().__init__(
            f"too many requests for this {scope}; retry after {retry_after_s:.1f} s"
        )
        self.scope = scope
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """`Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3)."""
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class BodyTooLarge(SecurityError):
    """The request body is larger than the configured limit."""

    status = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"request body exceeds {limit_bytes} bytes; send less, or raise "
            "BEND_SECURITY__BODY_LIMIT_BYTES"
        )
        self.limit_bytes = limit_bytes


# --- webhooks -------------------------------------------------------------------------------


class WebhookError(SecurityError):
    """A webhook delivery failed verification."""

    status = 401


class BadSignature(WebhookError):
    """The delivery's signature is missing, malformed or does not match its body."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"webhook signature is not valid ({reason}); sign `<t>.<body>` with HMAC-SHA256 "
            "and the hook's secret, sent as `X-Bend-Signature: t=<t>,v1=<hex>`"
        )
        self.reason = reason


class StaleTimestamp(WebhookError):
    """The delivery's timestamp is outside the tolerance window."""

    def __init__(self, timestamp: int, now: float, tolerance_s: float) -> None:
        super().__init__(
            f"webhook timestamp {timestamp} is {abs(now - timestamp):.0f} s from now, beyond "
            f"{tolerance_s:.0f} s; sign each delivery when sending it and check the sender's clock"
        )
        self.timestamp = timestamp


class ReplayedDelivery(WebhookError):
    """The same signed delivery was already accepted within the window."""

    def __init__(self) -> None:
        super().__init__(
            "this webhook delivery was already received; sign every new delivery afresh"
        )


class MissingHeader(WebhookError):
    """A header the hook requires is absent."""

    status = 400

    def __init__(self, header: str) -> None:
        super().__init__(f"webhook request lacks the {header} header; send it")
        self.header = header


# --- stores ---------------------------------------------------------------------------------


class UnknownApiKey(SecurityError):
    """No key of this project has this id."""

    status = 404

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} not found; see `GET /api/keys`")
        self.key_id = key_id


class InvalidRole(SecurityError):
    """A role name is not one of admin, editor, operator, viewer."""

    status = 422

    def __init__(self, role: str, known: list[str]) -> None:
        super().__init__(f"role {role!r} is unknown; use one of {', '.join(known)}")
        self.role = role


class UnknownSecret(SecurityError):
    """No secret of this project has this name."""

    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name!r} not found; set it with `PUT /api/secrets/{name}`")
        self.name = name


class InvalidSecretName(SecurityError):
    """A secret name is not an identifier-like string."""

    status = 422

    def __init__(self, name: str) -> None:
        super().__init__(
            f"secret name {name!r} is not valid; use letters, digits, `_`, `.` or `-`, "
            "starting with a letter or `_`, at most 128 characters"
        )
        self.name = name


class SecretUndecryptable(SecurityError):
    """A stored secret cannot be decrypted with the current key (key changed or row altered)."""

    status = 500

    def __init__(self, name: str) -> None:
        super().__init__(
            f"secret {name!r} cannot be decrypted with the configured key; restore the key it "
            "was stored with (BEND_SECURITY__SECRETS_KEY or its key file) or set the secret again"
        )
        self.name = name


class InvalidKeyMaterial(SecurityError):
    """A configured key is too short or not in the expected encoding."""

    status = 500

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} is not usable: {reason}")
        self.what = what
