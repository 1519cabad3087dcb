"""What can go wrong while replaying, archiving or forking a run."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = ["NoEvents", "ReplayDiverged"]


class NoEvents(BendError):
    """No recorded event belongs to the run."""

    status = 404

    def __init__(self, run_id: str, where: str) -> None:
        super().__init__(f"no events of run {run_id} in {where}; check the run id "
                         "(`bend runs list`) and the topic prefix (BEND_KAFKA__TOPIC_PREFIX)")
        self.run_id = run_id


class ReplayDiverged(BendError):
    """The run's recorded events do not fold: the log holds an event the state refuses."""

    status = 409

    def __init__(self, run_id: str, seq: int, detail: str) -> None:
        super().__init__(f"run {run_id} does not fold at seq {seq}: {detail}; the appliers no "
                         "longer read this history: add a versioned applier beside the old one")
        self.run_id = run_id
        self.seq = seq
