"""Find a workflow written in Python: `pkg.module:name` or `path/to/file.py:name`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from bend.core.definitions import parse_definition
from bend.core.workflow import WorkflowDefinition
from bend.sdk.builder import Workflow
from bend.sdk.errors import WorkflowNotFound

__all__ = ["is_python_target", "load_workflow"]


def is_python_target(target: str) -> bool:
    """Whether `target` names Python (`mod:attr`, `file.py`, `file.py:attr`), not a document."""
    path, _, attr = target.partition(":")
    if path.endswith(".py"):
        return True
    return bool(attr) and all(part.isidentifier() for part in path.split(".")) and \
        attr.isidentifier()


def load_workflow(target: str) -> WorkflowDefinition:
    """The workflow `target` names, built and checked; a file without `:name` must hold one
    workflow (a Workflow or WorkflowDefinition at module level)."""
    path, _, attr = target.partition(":")
    module = _module(target, path)
    if attr:
        if not hasattr(module, attr):
            raise WorkflowNotFound(target, f"{module.__name__} has no {attr!r}")
        return _definition(target, getattr(module, attr))
    values = list(vars(module).values())
    # Built definitions first: `workflow = wf.build()` beside its builder `wf` is one workflow.
    found: dict[int, Workflow | WorkflowDefinition] = {
        id(v): v for v in values if isinstance(v, WorkflowDefinition)}
    if not found:
        found = {id(v): v for v in values if isinstance(v, Workflow)}
    if len(found) != 1:
        raise WorkflowNotFound(target, f"it holds {len(found)} workflows; name one with :name")
    return _definition(target, next(iter(found.values())))


def _module(target: str, path: str) -> Any:
    if path.endswith(".py"):
        file = Path(path)
        if not file.is_file():
            raise WorkflowNotFound(target, f"no file {path}")
        name = f"_bend_workflow_{abs(hash(str(file.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise WorkflowNotFound(target, f"{path} is not importable")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        raise WorkflowNotFound(target, f"no module {exc.name!r} (is it on PYTHONPATH?)") from None


def _definition(target: str, value: Any) -> WorkflowDefinition:
    if isinstance(value, Workflow):
        return value.build()
    if isinstance(value, WorkflowDefinition):
        return parse_definition(value.model_dump(mode="json", by_alias=True, exclude_none=True))
    raise WorkflowNotFound(target, f"it names a {type(value).__name__}, not a Workflow")
