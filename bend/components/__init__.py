"""Reusable, versioned components (tools) that tool nodes and agents call."""

from bend.components.component import Component, ComponentContext, component
from bend.components.errors import (
    ComponentError, ComponentFailed, InvalidComponentInput, InvalidComponentOutput,
    UnknownComponent,
)
from bend.components.registry import ENTRY_POINT_GROUP, Registry, default_registry, parse_ref

__all__ = [
    "ENTRY_POINT_GROUP", "Component", "ComponentContext", "ComponentError", "ComponentFailed",
    "InvalidComponentInput", "InvalidComponentOutput", "Registry", "UnknownComponent",
    "component", "default_registry", "parse_ref",
]
