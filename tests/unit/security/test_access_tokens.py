"""HS256 access tokens: issued with the claims, and every way a token is wrong is typed."""

from __future__ import annotations

import jwt
import pytest

from bend.security import Principal, Role
from bend.security.errors import (
    BadTokenSignature, ExpiredToken, InvalidKeyMaterial, InvalidToken, WrongTokenAudience,
    WrongTokenIssuer,
)
from bend.security.tokens import TokenService

SECRET = b"s" * 32
T0 = 1_800_000_000.0


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _service(clock: Clock, **kw: object) -> TokenService:
    args: dict[str, object] = dict(issuer="bend", audience="bend-api", ttl_s=900, clock=clock)
    args.update(kw)
    secret = args.pop("secret", SECRET)
    return TokenService(secret, **args)  # type: ignore[arg-type]


PRINCIPAL = Principal(subject="key:0123456789abcdef", project="acme", role=Role.EDITOR,
                      key_id="0123456789abcdef")


def test_an_issued_token_verifies_to_the_same_principal_with_its_jti() -> None:
    service = _service(Clock())
    issued = service.issue(PRINCIPAL)
    principal = service.verify(issued.token)
    assert principal.subject == PRINCIPAL.subject
    assert (principal.project, principal.role, principal.key_id) == ("acme", Role.EDITOR,
                                                                      PRINCIPAL.key_id)
    assert principal.jti == issued.jti
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims["iat"] == int(T0) and claims["exp"] == int(T0) + 900 == issued.expires_at
    assert {"sub", "project", "role", "exp", "iat", "jti", "iss", "aud"} <= claims.keys()
    assert issued.token not in repr(issued)


def test_a_token_past_its_expiry_is_an_expired_token_error() -> None:
    clock = Clock()
    service = _service(clock, leeway_s=5.0)
    token = service.issue(PRINCIPAL, ttl_s=60).token
    clock.now = T0 + 60 + 4.9  # within the leeway
    service.verify(token)
    clock.now = T0 + 60 + 5
    with pytest.raises(ExpiredToken) as caught:
        service.verify(token)
    assert caught.value.status == 401


def test_a_token_signed_with_another_secret_is_a_bad_signature() -> None:
    token = _service(Clock(), secret=b"x" * 32).issue(PRINCIPAL).token
    with pytest.raises(BadTokenSignature):
        _service(Clock()).verify(token)


def test_a_token_with_an_altered_payload_is_a_bad_signature() -> None:
    token = _service(Clock()).issue(PRINCIPAL).token
    head, _, sig = token.split(".")
    forged_claims = jwt.decode(token, options={"verify_signature": False}) | {"role": "admin"}
    forged_body = jwt.encode(forged_claims, b"y" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(BadTokenSignature):
        _service(Clock()).verify(f"{head}.{forged_body}.{sig}")


def test_a_token_of_another_issuer_or_audience_is_refused_with_its_own_error() -> None:
    with pytest.raises(WrongTokenIssuer):
        _service(Clock()).verify(_service(Clock(), issuer="other").issue(PRINCIPAL).token)
    with pytest.raises(WrongTokenAudience):
        _service(Clock()).verify(_service(Clock(), audience="other").issue(PRINCIPAL).token)


def test_an_unsigned_token_is_refused() -> None:
    claims = {"sub": "x", "project": "acme", "role": "admin", "iat": int(T0), "exp": int(T0) + 60,
              "jti": "j", "iss": "bend", "aud": "bend-api"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(InvalidToken):
        _service(Clock()).verify(unsigned)


@pytest.mark.parametrize("missing", ["sub", "project", "role", "exp", "jti"])
def test_a_token_lacking_a_required_claim_is_invalid(missing: str) -> None:
    claims = {"sub": "x", "project": "acme", "role": "admin", "iat": int(T0), "exp": int(T0) + 60,
              "jti": "j", "iss": "bend", "aud": "bend-api"}
    del claims[missing]
    with pytest.raises(InvalidToken, match=missing):
        _service(Clock()).verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_token_with_an_unknown_role_or_from_the_future_is_invalid() -> None:
    base = {"sub": "x", "project": "acme", "iat": int(T0), "exp": int(T0) + 60, "jti": "j",
            "iss": "bend", "aud": "bend-api"}
    with pytest.raises(InvalidToken, match="role"):
        _service(Clock()).verify(jwt.encode(base | {"role": "root"}, SECRET, algorithm="HS256"))
    future = base | {"role": "admin", "iat": int(T0) + 3600, "exp": int(T0) + 7200}
    with pytest.raises(InvalidToken, match="future"):
        _service(Clock()).verify(jwt.encode(future, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "bend_not_a_jwt"])
def test_garbage_is_an_invalid_token(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        _service(Clock()).verify(garbage)


def test_a_short_secret_is_refused_when_the_service_is_built() -> None:
    with pytest.raises(InvalidKeyMaterial, match="32 bytes"):
        _service(Clock(), secret=b"short")
