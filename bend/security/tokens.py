"""Short-lived HS256 access tokens (PyJWT): issue for a principal, verify into one."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from bend.security.errors import (
    BadTokenSignature, ExpiredToken, InvalidKeyMaterial, InvalidToken, WrongTokenAudience,
    WrongTokenIssuer,
)
from bend.security.roles import Principal, Role

__all__ = ["IssuedToken", "TokenService"]

_ALGORITHM = "HS256"
_REQUIRED = ["sub", "project", "role", "exp", "iat", "jti", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token, its id and when it expires (epoch seconds)."""

    token: str
    jti: str
    expires_at: int

    def __repr__(self) -> str:
        return f"IssuedToken(token=***, jti={self.jti!r}, expires_at={self.expires_at})"


class TokenService:
    """Issues and verifies access tokens signed with one server secret."""

    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str,
        audience: str,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
        leeway_s: float = 5.0,
    ) -> None:
        if len(secret) < 32:
            raise InvalidKeyMaterial("the token secret", "HS256 needs at least 32 bytes")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = ttl_s
        self._clock = clock
        self._leeway_s = leeway_s  # API processes' clocks differ by a little

    def issue(self, principal: Principal, ttl_s: int | None = None) -> IssuedToken:
        """A token for `principal`, valid `ttl_s` (default the configured TTL) from now."""
        now = int(self._clock())
        jti = secrets.token_hex(16)
        exp = now + (ttl_s if ttl_s is not None else self._ttl_s)
        claims: dict[str, object] = {
            "sub": principal.subject,
            "project": principal.project,
            "role": principal.role.value,
            "iat": now,
            "exp": exp,
            "jti": jti,
            "iss": self._issuer,
            "aud": self._audience,
        }
        if principal.key_id:
            claims["key_id"] = principal.key_id  # lets the API refuse tokens of revoked keys
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return IssuedToken(token=token, jti=jti, expires_at=exp)

    def verify(self, token: str) -> Principal:
        """The principal a token names, or a typed InvalidToken (expired, bad signature, ...)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],  # never `none`, never what the token's header asks
                issuer=self._issuer,
                audience=self._audience,
                # Time is checked below against the injected clock, not PyJWT's own.
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False,
                         "verify_nbf": False},
            )
        except jwt.InvalidSignatureError:
            raise BadTokenSignature() from None
        except jwt.InvalidIssuerError:
            raise WrongTokenIssuer(self._issuer) from None
        except jwt.InvalidAudienceError:
            raise WrongTokenAudience(self._audience) from None
        except jwt.MissingRequiredClaimError as err:
            raise InvalidToken(f"lacks the {err.claim!r} claim") from None
        except jwt.DecodeError:
            raise InvalidToken("malformed") from None
        except jwt.InvalidTokenError as err:
            raise InvalidToken(str(err) or type(err).__name__) from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, object]) -> Principal:
        """Check the claims' time and types and build the principal."""
        now = self._clock()
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise InvalidToken("exp and iat must be numbers")
        if now >= exp + self._leeway_s:
            raise ExpiredToken()
        if iat > now + self._leeway_s:
            raise InvalidToken("issued in the future")
        try:
            role = Role(str(claims["role"]))
        except ValueError:
            raise InvalidToken(f"unknown role {claims['role']!r}") from None
        key_id = claims.get("key_id")
        return Principal(
            subject=str(claims["sub"]),
            project=str(claims["project"]),
            role=role,
            key_id=str(key_id) if key_id else None,
            jti=str(claims["jti"]),
        )
