"""Why a rebuild of the read model did not switch in, or could not start."""

from __future__ import annotations

from bend.core.errors import BendError
from projections.errors import ProjectionError

__all__ = ["RebuildAbandoned", "RebuildInProgress", "RebuildRefused"]


class RebuildRefused(ProjectionError):
    """The rebuilt read model was not switched in."""

    status = 409

    def __init__(self, rebuild_id: str, detail: str) -> None:
        super().__init__(f"rebuild {rebuild_id} was not switched in: {detail}")
        self.rebuild_id = rebuild_id


class RebuildInProgress(BendError):
    """Another rebuild is running (in this API process or another)."""

    status = 409

    def __init__(self, rebuild_id: str, owner: str | None = None) -> None:
        where = f" in {owner}" if owner else ""
        super().__init__(f"rebuild {rebuild_id} is still running{where}; wait for it "
                         f"(GET /api/replay/projections/{rebuild_id})")
        self.rebuild_id = rebuild_id


class RebuildAbandoned(ProjectionError):
    """The rebuild stopped reporting progress and another process took over its record."""

    status = 409

    def __init__(self, rebuild_id: str) -> None:
        super().__init__(f"rebuild {rebuild_id} was marked abandoned (no progress for too long) "
                         "and stopped before switching; start a new one")
        self.rebuild_id = rebuild_id
