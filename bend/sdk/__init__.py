"""Workflows written in Python, compiling to exactly the definition their YAML form gives.

    from bend.sdk import Workflow

    wf = Workflow("greeter", input_schema={"type": "object", "required": ["who"]})
    greet = wf.transform("greet", expression="join(' ', ['hello', input.who])")
    wf.tool("shout", "noop@1", inputs={"text": greet.output})
    workflow = wf.build()   # checked now: a problem names the file and line of its step

`bend workflows apply pkg.module:workflow` (or `path/to/file.py:workflow`) registers it.
"""

from __future__ import annotations

from bend.core.nodes import Approvers, LlmEndpoint, RetryPolicy
from bend.core.workflow import Defaults
from bend.sdk.builder import Step, Workflow
from bend.sdk.errors import DefinitionError, SdkError, UnknownField, WorkflowNotFound
from bend.sdk.load import load_workflow
from bend.sdk.refs import Ref
from bend.sdk.tools import tool

__all__ = [
    "Approvers", "Defaults", "DefinitionError", "LlmEndpoint", "Ref", "RetryPolicy", "SdkError",
    "Step", "UnknownField", "Workflow", "WorkflowNotFound", "load_workflow", "tool",
]
