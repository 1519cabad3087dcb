"""The component registry: components by `name@version`, found through entry points."""

from __future__ import annotations

import builtins

from collections.abc import Iterable
from importlib.metadata import entry_points

from bend.components.component import Component
from bend.components.errors import (
    DuplicateComponent, InvalidComponent, InvalidComponentRef, UnknownComponent,
)

__all__ = ["ENTRY_POINT_GROUP", "Registry", "default_registry", "parse_ref"]

ENTRY_POINT_GROUP = "bend.components"


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split `name@version` (or a bare `name`, meaning the newest version)."""
    name, sep, version = ref.strip().partition("@")
    if not name or (sep and not version) or "@" in version:
        raise InvalidComponentRef(ref)
    return name, version or None


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # Numeric parts compare as numbers (`10` > `9`) and sort above textual ones (`1.0` > `1.0rc`).
    return tuple((1, int(p)) if p.isdigit() else (0, p)
                 for p in version.replace("-", ".").split("."))


class Registry:
    """Components by name and version; `get("name")` is the newest version."""

    def __init__(self, components: Iterable[Component] = ()) -> None:
        self._by_name: dict[str, dict[str, Component]] = {}
        for comp in components:
            self.register(comp)

    def register(self, comp: Component) -> Component:
        """Add `comp`; the same object twice is fine, another one under its ref is not."""
        if not isinstance(comp, Component):
            raise InvalidComponent(repr(comp), "only `@component`-decorated callables register")
        versions = self._by_name.setdefault(comp.name, {})
        existing = versions.get(comp.version)
        if existing is not None and existing is not comp:
            raise DuplicateComponent(comp.ref)
        versions[comp.version] = comp
        return comp

    def get(self, ref: str) -> Component:
        """The component `name@version`, or the newest version of a bare `name`."""
        name, version = parse_ref(ref)
        versions = self._by_name.get(name, {})
        if version is None and versions:
            return versions[max(versions, key=_version_key)]
        if version in versions:
            return versions[version]
        raise UnknownComponent(ref, [c.ref for c in self.list()])

    def __contains__(self, ref: object) -> bool:
        try:
            self.get(str(ref))
        except (UnknownComponent, InvalidComponentRef):
            return False
        return True

    def list(self) -> list[Component]:
        """Every registered component, by name then version."""
        return [versions[v] for name in sorted(self._by_name)
                for versions in [self._by_name[name]] for v in sorted(versions, key=_version_key)]

    def search(self, text: str = "", tags: Iterable[str] = ()) -> builtins.list[Component]:
        """Components whose name or description holds every word of `text` and that carry `tags`."""
        words = text.lower().split()
        wanted = {t.lower() for t in tags}
        found = []
        for comp in self.list():
            haystack = f"{comp.name} {comp.description}".lower()
            if all(w in haystack for w in words) and wanted <= {t.lower() for t in comp.tags}:
                found.append(comp)
        return found

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """Load every component declared under `group` by installed packages.

        An entry point names a `Component` or an iterable of them.
        """
        registry = cls()
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            loaded = ep.load()
            items = [loaded] if isinstance(loaded, Component) else loaded
            try:
                for comp in items:
                    registry.register(comp)
            except TypeError as exc:
                raise InvalidComponent(ep.value, f"entry point {ep.name!r} names neither a "
                                                 "component nor a list of them") from exc
        return registry


def default_registry() -> Registry:
    """Bend's built-in components plus every installed package's `bend.components`."""
    from bend.components.builtin import BUILTIN_COMPONENTS

    registry = Registry(BUILTIN_COMPONENTS)
    for comp in Registry.from_entry_points().list():
        registry.register(comp)
    return registry
