"""Rebuilding the read models: `rebuild_projections`, the read model rebuilt from the log's start
beside the live one, verified table by table, then switched in atomically while the API keeps
serving.

Phases: rebuilding (the whole log into a fresh schema) -> catching_up (to what the live
projector applied meanwhile) -> verifying (under the live schema's batch lock: both at the same
offsets, compared table by table) -> switched (schemas renamed, or one projection's tables
moved, in that same transaction), or refused (differences, and they were not accepted), or
failed. The live projector needs no restart: its connection names the schema, so its next
batch writes to the switched-in tables, from offsets they already hold.

With a `RebuildRecorder`, the status lives in Postgres (`projection_rebuilds`), written by the
process running the rebuild: claimed at the start (refused while another runs anywhere), beaten
every `rebuild_heartbeat_s`, ended with the outcome. Any API replica reads it; a rebuild whose
heartbeat stopped for `rebuild_abandoned_after_s` is reported `abandoned`.

- errors.py: why a rebuild did not switch or start; status.py: `RebuildStatus`
- recorder.py: `RebuildRecorder`, the status in Postgres with heartbeats
- rebuild.py: `rebuild_projections`, the four phases
"""

from bend.replay.projections.errors import RebuildAbandoned, RebuildInProgress, RebuildRefused
from bend.replay.projections.rebuild import rebuild_projections
from bend.replay.projections.recorder import RebuildRecorder
from bend.replay.projections.status import RebuildStatus, abandoned_detail, new_status

__all__ = ["RebuildAbandoned", "RebuildInProgress", "RebuildRecorder", "RebuildRefused",
           "RebuildStatus", "abandoned_detail", "new_status", "rebuild_projections"]
