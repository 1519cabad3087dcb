"""Typed errors of the component registry and of component calls."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = [
    "ComponentError", "ComponentFailed", "DuplicateComponent", "InvalidComponent",
    "InvalidComponentInput", "InvalidComponentOutput", "InvalidComponentRef",
    "UnknownComponent",
]


class ComponentError(BendError):
    """Root of component errors; `retryable` says whether calling again may succeed."""

    retryable: bool = False


class ComponentFailed(ComponentError):
    """A component refused its call on purpose (raise it from a component, with `retryable`)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidComponentRef(ComponentError):
    """A component reference is not `name` or `name@version`."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"component reference {ref!r} is not `name` or `name@version` "
            "(e.g. `web_search@1`); fix it in the workflow definition"
        )
        self.ref = ref


class UnknownComponent(ComponentError):
    """No registered component has this name (and version)."""

    def __init__(self, ref: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(
            f"no component {ref!r} is registered (registered: {listed}); install the package "
            "that declares it under the `bend.components` entry-point group, or fix the reference"
        )
        self.ref = ref


class DuplicateComponent(ComponentError):
    """Two different callables claim the same `name@version`."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"component {ref} is registered twice by different callables; bump the version "
            "of one of them (versions are immutable)"
        )
        self.ref = ref


class InvalidComponent(ComponentError):
    """A component's declaration is wrong (bad name, version or JSON Schema)."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"component {ref} is declared wrongly: {reason}")
        self.ref = ref
        self.reason = reason


class InvalidComponentInput(ComponentError):
    """A call's inputs do not match the component's input schema; retrying cannot fix it."""

    def __init__(self, ref: str, field: str, reason: str) -> None:
        super().__init__(
            f"input of component {ref} is invalid at {field}: {reason}; make the step's "
            "inputs match the component's input_schema (see `Registry.get(ref).input_schema`)"
        )
        self.ref = ref
        self.field = field
        self.reason = reason


class InvalidComponentOutput(ComponentError):
    """A component returned output that does not match its output schema (a component bug)."""

    def __init__(self, ref: str, field: str, reason: str) -> None:
        super().__init__(
            f"output of component {ref} is invalid at {field}: {reason}; the component breaks "
            "its own output_schema, fix the component and publish a new version"
        )
        self.ref = ref
        self.field = field
        self.reason = reason
