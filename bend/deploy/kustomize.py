"""Render a kustomize overlay into Kubernetes objects with the kustomize this machine has."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bend.deploy.errors import KustomizeFailed, KustomizeMissing
from bend.settings import PROJECT_ROOT

__all__ = ["kustomize_command", "render"]

# Where `make kustomize` puts the binary it builds from the Go module proxy.
LOCAL_KUSTOMIZE = PROJECT_ROOT / ".bend" / "bin" / "kustomize"


def kustomize_command() -> list[str]:
    """`kustomize build` from PATH or .bend/bin, else `kubectl kustomize` (kubectl embeds it)."""
    found = shutil.which("kustomize") or (str(LOCAL_KUSTOMIZE) if LOCAL_KUSTOMIZE.exists()
                                          else None)
    if found:
        return [found, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    raise KustomizeMissing()


def render(path: Path, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The objects `kustomize build path` makes, in its order."""
    proc = subprocess.run([*kustomize_command(), str(path)],  # noqa: S603 - a found binary
                          capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise KustomizeFailed(path, proc.stderr or proc.stdout)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
