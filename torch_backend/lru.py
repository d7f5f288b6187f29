"""A small least-recently-used map, the one shape of gradhog's caches (prepared meshes, coarse views)."""
from __future__ import annotations

import collections
from typing import Any, Hashable


class LRU:
    """Keeps the ``size`` most recently used entries: :meth:`get` refreshes one, :meth:`put` evicts
    the oldest beyond ``size``. Not thread-safe."""

    def __init__(self, size: int = 4):
        self.size = int(size)
        self._entries: "collections.OrderedDict[Hashable, Any]" = collections.OrderedDict()

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value of ``key`` (now the most recent), or ``default``."""
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value: Any) -> Any:
        """Store ``value`` as the most recent entry; returns it."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
