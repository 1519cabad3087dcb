"""The use cases, one function each, under every door: the REST routers (bend.api.routers) and
the web UI's routes (bend.web.routes) call them and only translate HTTP or forms.

Each takes what it works with (`Deps`: settings, the read models' pool, the command producer)
and the caller (`Principal`: who, with which role, in which project), checks the caller's
permission itself, and scopes every read to the caller's project.

- runs.py: read a run, cancel it, fork it from a step, retry a step, replay it
- workflows.py: create a workflow, version it, activate, pause or delete it; start a run of it
  (its pinned version, checked input, idempotency)
- approvals.py: the approvals waiting in a project, approve or reject one, signal a run
- dead_letters.py: list, read and re-drive dead letters within the caller's scope
- inputs.py: the checks of a run's input; errors.py: the use cases' errors
"""
