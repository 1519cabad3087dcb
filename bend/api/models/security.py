"""Bodies of /api/tokens, /api/keys and /api/secrets (never a key's hash nor a secret's value)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StrictInt, field_validator, model_validator

from bend.api.inputs import IsoTime
from bend.security.keystore import ApiKeyInfo
from bend.security.roles import Role
from bend.security.secretstore import SecretInfo, check_host_pattern

__all__ = [
    "KeyCreated", "KeyInfo", "KeyList", "KeyRequest", "SecretList", "SecretMeta",
    "SecretValue", "TokenIssued", "TokenRequest",
]


class TokenRequest(BaseModel):
    """Exchange the API key in `Authorization` for an access token."""

    ttl_s: StrictInt | None = Field(default=None, ge=1, le=86_400,
                              description="Lifetime in seconds; at most the server's token TTL")


class TokenIssued(BaseModel):
    """A short-lived access token (JWT); send it as `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, no secret
    expires_in: int = Field(description="Seconds from now")
    expires_at: int = Field(description="Unix seconds")
    project: str
    role: Role


class KeyRequest(BaseModel):
    """A new API key of the caller's project."""

    role: Role
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$",
                      description="What the key is for (printable text)")
    expires_at: IsoTime | None = Field(default=None, description="Default: never")
    project: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Another project to create the key in (installation admins only: this is "
                    "how a project begins); default: the caller's")

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.astimezone(timezone.utc) <= datetime.now(timezone.utc):
            raise ValueError("expires_at is in the past: the key would never work")
        return value


class KeyInfo(ApiKeyInfo):
    """What may be shown about a key: never its secret nor its hash."""

    active: bool

    @classmethod
    def of(cls, info: ApiKeyInfo, now: datetime) -> KeyInfo:
        """The body of a stored key (the store's fields, and whether it works at `now`)."""
        return cls(**info.model_dump(), active=info.works_at(now))


class KeyCreated(KeyInfo):
    """A key just created; `key` is shown this once and never again."""

    key: str = Field(description="The full key (`bend_<key_id>_<secret>`); store it now")


class KeyList(BaseModel):
    """Every key of the project, revoked and expired ones too, oldest first."""

    items: list[KeyInfo]


def _hosts(value: list[str] | None) -> list[str] | None:
    return None if value is None else [check_host_pattern(h) for h in value]


HostPatterns = Annotated[list[Annotated[str, Field(min_length=1, max_length=260)]] | None,
                         Field(default=None, max_length=100, description=(
                             "Hosts executors may send the secret to: `api.openai.com`, "
                             "`*.example.com` (its subdomains), `host:port`, or `*` (any). "
                             "Omitted: unchanged (a new secret: none, so steps cannot send it "
                             "anywhere; webhooks may still verify with it)")),
                         AfterValidator(_hosts)]


class SecretValue(BaseModel):
    """A secret's value, sent once (the server keeps it encrypted and never returns it), and
    the hosts it may be sent to; either alone changes just that of an existing secret."""

    value: str | None = Field(default=None, min_length=1, max_length=65_536)
    allowed_hosts: HostPatterns = None

    @model_validator(mode="after")
    def _something(self) -> SecretValue:
        if self.value is None and self.allowed_hosts is None:
            raise ValueError("send `value`, `allowed_hosts` or both")
        return self


class SecretMeta(BaseModel):
    """What may be shown about a secret: its name, times and allowed hosts."""

    name: str
    created_at: datetime
    updated_at: datetime
    allowed_hosts: list[str] | None = Field(
        description="Hosts steps may send it to; null: set before hosts existed (any host)")

    @classmethod
    def of(cls, info: SecretInfo) -> SecretMeta:
        """The body of a stored secret."""
        return cls(name=info.name, created_at=info.created_at, updated_at=info.updated_at,
                   allowed_hosts=None if info.allowed_hosts is None else
                   list(info.allowed_hosts))


class SecretList(BaseModel):
    """The project's secrets by name."""

    items: list[SecretMeta]
