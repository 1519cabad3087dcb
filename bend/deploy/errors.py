"""Typed errors of `bend deploy`; each says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bend.core.errors import BendError

__all__ = ["DeployError", "KustomizeFailed", "KustomizeMissing", "ManifestsInvalid",
           "UnknownSetting"]


class DeployError(BendError):
    """Root of the errors about Bend's Kubernetes manifests."""


class UnknownSetting(DeployError):
    """An env file sets a BEND_ variable that no field of bend.settings.Settings reads."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(f"{path} sets {name}, which is not a field of bend.settings.Settings; "
                         "fix its spelling (nested sections use `__`) or remove it")
        self.name = name


class KustomizeMissing(DeployError):
    """Neither `kustomize` nor `kubectl` (which embeds it) is on this machine."""

    def __init__(self) -> None:
        super().__init__("no kustomize: install kubectl, or run `make kustomize` (builds "
                         "kustomize from the Go module proxy into .bend/bin)")


class KustomizeFailed(DeployError):
    """kustomize could not build an overlay."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"kustomize could not build {path}: {detail.strip()}")
        self.path = path


class ManifestsInvalid(DeployError):
    """Rendered objects that the Kubernetes or CRD schemas reject."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the manifests:\n  " +
                         "\n  ".join(problems))
        self.problems = tuple(problems)
