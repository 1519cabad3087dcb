"""The SDK's errors: each names the file and line of the Python that made the mistake."""

from __future__ import annotations

import inspect
from pathlib import Path

from bend.core.errors import BendError

__all__ = ["DefinitionError", "SdkError", "UnknownField", "WorkflowNotFound", "caller"]

_SDK_DIR = str(Path(__file__).parent)


def caller() -> tuple[str, int]:
    """(file, line) of the nearest frame outside bend.sdk: where the user's code is."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_SDK_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return frame.f_code.co_filename, frame.f_lineno


class SdkError(BendError):
    """A workflow written in Python that cannot compile; `file` and `line` say where."""

    def __init__(self, message: str, file: str, line: int) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line = file, line


class UnknownField(SdkError, AttributeError):
    """A step's output (or the input) read by a field its declared type does not have."""

    code = "unknown_output_field"

    def __init__(self, where: str, name: str, known: list[str], file: str, line: int) -> None:
        super().__init__(f"{where} has no field {name!r}; it has {', '.join(known) or 'none'}",
                         file, line)
        self.field = name


class DefinitionError(SdkError):
    """The compiled definition has problems (a missing step, a cycle, a bad expression...)."""

    code = "invalid_sdk_definition"

    def __init__(self, problems: list[str], file: str, line: int) -> None:
        super().__init__("the workflow is not valid:\n  " + "\n  ".join(problems), file, line)
        self.problems = problems


class WorkflowNotFound(BendError):
    """`pkg.module:name` or `file.py:name` names no workflow."""

    def __init__(self, target: str, why: str) -> None:
        super().__init__(f"cannot load a workflow from {target!r}: {why}; pass "
                         "`pkg.module:name` or `path/to/file.py:name`")
        self.target = target
