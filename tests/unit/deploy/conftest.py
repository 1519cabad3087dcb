"""The overlays rendered once per session with the machine's kustomize, and their settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bend.deploy.envfile import settings_from_env
from bend.deploy.kustomize import render
from bend.settings import PROJECT_ROOT, Settings

K8S = PROJECT_ROOT / "deploy" / "k8s"
OVERLAYS = ("local", "production")


class Rendered:
    """One overlay's objects, looked up by kind and name."""

    def __init__(self, path: Path, objects: list[dict[str, Any]]) -> None:
        self.path = path
        self.objects = objects

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Every object of `kind`."""
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object of `kind` called `name` (generated names carry a hash suffix)."""
        found = [o for o in self.of(kind) if o["metadata"]["name"] == name or (
            kind in ("ConfigMap", "Secret") and o["metadata"]["name"].startswith(f"{name}-"))]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
        return found[0]

    def names(self, kind: str) -> set[str]:
        """The names of the objects of `kind`."""
        return {o["metadata"]["name"] for o in self.of(kind)}

    def env(self) -> dict[str, str]:
        """The bend-config ConfigMap's variables: what every pod reads."""
        return dict(self.get("ConfigMap", "bend-config")["data"])

    def settings(self) -> Settings:
        """The Settings a Bend pod reads from the ConfigMap (secrets aside)."""
        return settings_from_env(self.env())


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    """overlay name -> its rendered objects."""
    return {name: Rendered(K8S / "overlays" / name, render(K8S / "overlays" / name))
            for name in OVERLAYS}
