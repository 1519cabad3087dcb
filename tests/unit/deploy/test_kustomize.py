"""Rendering finds the machine's kustomize, and says what to do when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

import bend.deploy.kustomize as kustomize
from bend.deploy.errors import KustomizeFailed, KustomizeMissing


def test_with_no_kustomize_nor_kubectl_rendering_says_how_to_get_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(kustomize, "LOCAL_KUSTOMIZE", tmp_path / "kustomize")
    with pytest.raises(KustomizeMissing, match="make kustomize"):
        kustomize.render(tmp_path)


def test_a_broken_overlay_is_reported_with_kustomizes_reason(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(KustomizeFailed, match="missing.yaml"):
        kustomize.render(tmp_path)
