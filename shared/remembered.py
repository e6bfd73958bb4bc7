"""Values a process remembers for a while, by key (a read it need not repeat at once)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any


class Remembered(OrderedDict[str, tuple[float, Any]]):
    """key -> (the ``time.monotonic()`` it was kept, value); the most recently kept last, the oldest
    forgotten past a size. ``clear()`` forgets everything."""

    def recall(self, key: str, keep_s: float) -> Any | None:
        """The value kept for ``key`` less than ``keep_s`` ago, else None."""
        kept = self.get(key)
        if kept is None or time.monotonic() - kept[0] >= keep_s:
            return None
        return kept[1]

    def keep(self, key: str, value: Any, max_items: int) -> None:
        self[key] = (time.monotonic(), value)
        self.move_to_end(key)
        while len(self) > max_items:
            self.popitem(last=False)
