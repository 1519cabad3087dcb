"""Bodies of /api/components."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from bend.api.models.common import LogPosition

__all__ = [
    "ComponentDetail", "ComponentPage", "ComponentRequest", "ComponentSummary",
    "ComponentVersion", "ComponentWritten",
]


class ComponentRequest(BaseModel):
    """A component version to register; versions are immutable once registered."""

    name: str = Field(min_length=1, max_length=64, description="Letters, digits, `_`, `-`")
    version: str = Field(min_length=1, max_length=32, description="Like `1` or `1.2.0`")
    description: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description='A JSON Schema of the inputs; it must describe an object ("type": "object")')
    output_schema: dict[str, Any] | None = Field(default=None,
                                                 description="A JSON Schema of the output")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # `version: 1` in YAML is a number; versions are text (`1`, `1.2.0`).
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag or len(tag) > 50:
                raise ValueError("each tag is 1 to 50 characters")
        return value


class ComponentVersion(BaseModel):
    """One registered component version with its schemas."""

    ref: str = Field(description="`name@version`, as workflows name it")
    name: str
    version: str
    description: str
    tags: list[str]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    project: str = Field(description="The project that registered it")
    registered_by: str
    registered_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> ComponentVersion:
        """The body of a `components` row."""
        return cls(ref=f"{row['name']}@{row['version']}", **row)


class ComponentWritten(BaseModel):
    """A registered version, and where its event landed (none if it was registered as is)."""

    ref: str
    name: str
    version: str
    changed: bool = Field(description="false when this exact version was already registered")
    position: LogPosition | None = None


class ComponentSummary(BaseModel):
    """A component as listed: its versions, described by the newest."""

    name: str
    latest_version: str
    versions: list[str] = Field(description="Oldest first")
    description: str
    tags: list[str]
    registered_at: datetime = Field(description="When the newest version was registered")


class ComponentPage(BaseModel):
    """One page of components by name; pass `next_cursor` as `?cursor=` for the next."""

    items: list[ComponentSummary]
    next_cursor: str | None


class ComponentDetail(BaseModel):
    """A component with every version, oldest first."""

    name: str
    latest_version: str
    versions: list[ComponentVersion]
