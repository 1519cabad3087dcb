"""Why a run is not moving: `explain_run` gathers live facts and asks `bend.core.explain`."""

from bend.explain.explain import explain_run, partition_of
from bend.explain.model import Explanation, ReasonView

__all__ = ["Explanation", "ReasonView", "explain_run", "partition_of"]
