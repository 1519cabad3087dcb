"""The lock files pin every dependency pyproject.toml names, with hashes: a dependency added
without `make lock` fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pinned(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M))
    assert text.count("==") == len(pins)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    assert all("--hash=sha256:" in b for b in blocks), "every pin carries its hashes"
    return {k.lower().replace("_", "-"): v for k, v in pins.items()}


def test_every_dependency_is_pinned_with_hashes_in_the_locks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"] if "win32'" not in r or "!=" in r}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    full, image = _pinned(ROOT / "requirements.lock"), _pinned(ROOT / "deploy" / "requirements.lock")
    assert runtime | dev | {"setuptools", "wheel"} <= set(full), (runtime | dev) - set(full)
    assert runtime | {"setuptools", "wheel"} <= set(image), runtime - set(image)
    assert all(full[n] == v for n, v in image.items() if n in full), "the locks agree"
