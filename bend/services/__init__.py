"""The use cases, one function each, under every door: the REST routers (bend.api.routers) and
the web UI's routes (bend.web.routes) call them and only translate HTTP or forms.

Each takes what it works with (`Deps`: settings, the read models' pool, the command producer)
and the caller (`Principal`: who, with which role, in which project), checks the caller's
permission itself, and scopes every read to the caller's project.

- runs.py: read a run, cancel it, fork it from a step, retry a step, replay it
- workflows.py: create a workflow, version it, activate, pause or delete it; start a run of it
  (its pinned version, checked input, idempotency)
- bulk.py: start one run per input in one request, bounded in runs and bytes
- approvals.py: the approvals waiting in a project, approve or reject one, signal a run
- triggers.py (with trigger_checks.py): create, change and remove triggers, backfill a
  schedule, replay a Kafka trigger
- webhooks.py (with webhook_input.py): a signed delivery fires its webhook trigger and starts
  a run; the delivery as a run input
- components.py: register a component version, and the installed components at start
- backtests.py, keys.py, secrets.py, mcp_servers.py, notifications.py, audit.py, system.py:
  the other resources' use cases
- dead_letters.py: list, read and re-drive dead letters within the caller's scope
- inputs.py: the checks of a run's input; errors.py: the use cases' errors
"""
