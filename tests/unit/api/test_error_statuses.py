"""Every typed error says its HTTP status one way, as its own `status`: the API and the UI read
only that (no table beside the classes)."""

from __future__ import annotations

import importlib
import pkgutil

import bend
import projections
import streams
from bend.api.errors import status_for
from bend.core.errors import BendError
from bend.kafka.errors import KafkaUnavailable
from bend.services.errors import UnknownRun
from projections.errors import ProjectionBehind


def _every_error() -> set[type[BendError]]:
    for pkg in (bend, projections, streams):
        for module in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}."):
            if ".devstack" not in module.name and not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found, todo = set(), [BendError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_carries_a_status_the_api_answers_with() -> None:
    errors = _every_error()
    assert len(errors) > 100
    for cls in errors:
        assert isinstance(cls.status, int) and 400 <= cls.status <= 599, cls
    assert status_for(UnknownRun("r1")) == 404
    assert KafkaUnavailable.status == 503 and KafkaUnavailable.retry_after == "5"
    assert ProjectionBehind.retry_after == "1"
