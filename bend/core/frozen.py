"""An immutable, hashable mapping whose updates return new mappings (copy on write)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["FrozenMap"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """A read-only dict: `set`, `remove` and `update` return a new map, insertion order kept."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: K, default: Any = None) -> Any:
        """The value at `key`, or `default`."""
        return self._data.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def set(self, key: K, value: V) -> FrozenMap[K, V]:
        """A copy with `key` bound to `value`."""
        data = dict(self._data)
        data[key] = value
        return _wrap(data)

    def remove(self, *keys: K) -> FrozenMap[K, V]:
        """A copy without `keys` (absent keys are ignored)."""
        if not any(k in self._data for k in keys):
            return self
        data = {k: v for k, v in self._data.items() if k not in keys}
        return _wrap(data)

    def update(self, items: Mapping[K, V]) -> FrozenMap[K, V]:
        """A copy with every pair of `items` bound."""
        if not items:
            return self
        data = dict(self._data)
        data.update(items)
        return _wrap(data)

    def to_dict(self) -> dict[K, V]:
        """A plain, mutable copy."""
        return dict(self._data)


def _wrap(data: dict[Any, Any]) -> FrozenMap[Any, Any]:
    # Skips the copy in __init__: `data` is a fresh dict nobody else holds.
    new: FrozenMap[Any, Any] = FrozenMap.__new__(FrozenMap)
    new._data = data  # noqa: SLF001 - its own class, built without __init__
    new._hash = None  # noqa: SLF001
    return new
