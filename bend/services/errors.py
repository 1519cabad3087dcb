"""Errors of the use cases (bend.services): each names what happened, carries the ids and says
what to do. The API answers them with the status bend.api.errors gives them; the UI shows them."""

from __future__ import annotations

from collections.abc import Sequence

from bend.core.errors import BendError

__all__ = [
    "ApiError", "ApprovalNotWaiting", "ApprovalTimedOut", "IdempotencyConflict", "InvalidAnswer",
    "InvalidSignal", "NotAnApprover", "NotInstallationAdmin", "RunNotOpen", "InvalidInput",
    "RunFinished", "UnknownRun",
    "UnknownVersion", "UnknownWorkflow", "UnstorableInput", "WorkflowDeleted",
]


class ApiError(BendError):
    """Root of the errors of requests the API cannot serve as asked."""


class UnknownWorkflow(ApiError):
    """No workflow has this id (in the caller's project)."""

    status = 404

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id} not found; list workflows with "
                         "GET /api/workflows, or create it with POST /api/workflows")
        self.workflow_id = workflow_id


class UnknownVersion(ApiError):
    """The workflow has no such version."""

    status = 404

    def __init__(self, workflow_id: str, version: int, latest: int) -> None:
        super().__init__(f"workflow {workflow_id} has no version {version}; its versions are "
                         f"1 to {latest}")
        self.workflow_id = workflow_id
        self.version = version


class WorkflowDeleted(ApiError):
    """The workflow was deleted; it can be read but not changed or run."""

    status = 409

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id} was deleted; its runs stay readable, but to "
                         "run it again create it anew with POST /api/workflows")
        self.workflow_id = workflow_id


class UnknownRun(ApiError):
    """No run has this id (in the caller's project)."""

    status = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} not found; list runs with GET /api/executions (a run "
                         "just started shows once projected: pass the `wait_for` its start "
                         "returned)")
        self.run_id = run_id


class RunFinished(ApiError):
    """The run already finished, so it cannot be cancelled."""

    status = 409

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} already finished ({status}); nothing to cancel")
        self.run_id = run_id
        self.run_status = status


class IdempotencyConflict(ApiError):
    """An idempotency key reused with another input or workflow version."""

    status = 409

    def __init__(self, key: str, run_id: str) -> None:
        super().__init__(f"idempotency key {key!r} already started run {run_id} with another "
                         "input or version; use a new key for a different request")
        self.idempotency_key = key
        self.run_id = run_id


class InvalidInput(ApiError):
    """A run's input does not match the workflow's `input_schema`."""

    status = 422

    def __init__(self, workflow_id: str, problems: Sequence[tuple[str, str]]) -> None:
        listed = "; ".join(f"{where}: {what}" for where, what in problems)
        super().__init__(f"the input does not match workflow {workflow_id}'s input_schema: "
                         f"{listed}; fix the input and submit it again")
        self.workflow_id = workflow_id
        self.problems = tuple(problems)


class UnstorableInput(ApiError):
    """A value Postgres cannot store (a NUL character or a lone surrogate) in a run's input."""

    status = 422

    def __init__(self, locations: Sequence[str], problem: str) -> None:
        super().__init__(f"{', '.join(locations)} {problem}")
        self.locations = tuple(locations)


class RunNotOpen(ApiError):
    """The run already finished: it takes no approvals or signals."""

    code = "run_finished"
    status = 409

    def __init__(self, run_id: str, status: str, what: str) -> None:
        super().__init__(f"run {run_id} already finished ({status}); it takes no {what}")
        self.run_id = run_id
        self.run_status = status


class ApprovalNotWaiting(ApiError):
    """The step is not an approval waiting for a decision (never began, decided, or no approval)."""

    status = 409

    def __init__(self, run_id: str, step_id: str, why: str) -> None:
        super().__init__(f"step {step_id} of run {run_id} is not waiting for an approval: {why}; "
                         "list the waiting ones with GET /api/approvals")
        self.run_id = run_id
        self.step_id = step_id


class ApprovalTimedOut(ApiError):
    """The approval's timeout has passed: it takes its default outcome, not a decision."""

    status = 409

    def __init__(self, run_id: str, step_id: str, timeout_at: str) -> None:
        super().__init__(f"approval {step_id} of run {run_id} timed out at {timeout_at}; it "
                         "takes its default outcome (on_timeout)")
        self.run_id = run_id
        self.step_id = step_id
        self.timeout_at = timeout_at


class NotAnApprover(ApiError):
    """The caller is none of the approval's approvers."""

    status = 403

    def __init__(self, run_id: str, step_id: str, roles: Sequence[str],
                 keys: Sequence[str]) -> None:
        who = " or ".join(filter(None, [f"roles {', '.join(roles)}" if roles else "",
                                        f"keys {', '.join(keys)}" if keys else ""])) or "nobody"
        super().__init__(f"approval {step_id} of run {run_id} is decided by {who}; ask one of "
                         "them")
        self.run_id = run_id
        self.step_id = step_id
        self.allowed_roles = list(roles)


class InvalidAnswer(ApiError):
    """The approver's answer does not match the approval's `answer_schema`."""

    status = 422

    def __init__(self, run_id: str, step_id: str, problem: str) -> None:
        super().__init__(f"the answer does not match approval {step_id}'s answer_schema: "
                         f"{problem}; fix the answer and send it again")
        self.run_id = run_id
        self.step_id = step_id


class InvalidSignal(ApiError):
    """The run cannot take the signal: no wait step for it, or its payload fails the schema."""

    status = 422

    def __init__(self, run_id: str, name: str, problem: str) -> None:
        super().__init__(f"run {run_id} refuses signal {name!r}: {problem}")
        self.run_id = run_id
        self.name = name


class NotInstallationAdmin(ApiError):
    """Acting across projects is for admins of the installation's own project (BEND_PROJECT)."""

    code = "installation_admin_required"
    status = 403

    def __init__(self, project: str, what: str) -> None:
        super().__init__(f"only admins of the installation's own project may {what}; a key of "
                         f"project {project!r} cannot: ask an installation admin")
        self.project = project
