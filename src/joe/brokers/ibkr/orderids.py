"""Persistence of IBKR order ids so they only ever increase, across restarts and reconnects.

TWS rejects a reused id (error 103) and only guarantees `nextValidId` for the current session, so
Joe remembers the highest id it used and never goes below it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol


class OrderIdStore(Protocol):
    """Where the highest used order id is kept."""

    def load(self) -> int:
        """The highest order id used so far (0 if none)."""
        ...

    def save(self, order_id: int) -> None:
        """Remember that `order_id` was used (a lower value than stored is ignored)."""
        ...


class MemoryOrderIdStore:
    """In-memory store (tests, or when persistence is handled elsewhere)."""

    def __init__(self, start: int = 0) -> None:
        self._value = start

    def load(self) -> int:
        return self._value

    def save(self, order_id: int) -> None:
        self._value = max(self._value, int(order_id))


class FileOrderIdStore:
    """A tiny JSON file `{"last_order_id": n}`, replaced atomically and fsynced on every save."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._value = self._read()

    def _read(self) -> int:
        try:
            data = json.loads(self.path.read_text())
            return max(0, int(data.get("last_order_id", 0)))
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            return 0

    def load(self) -> int:
        with self._lock:
            self._value = max(self._value, self._read())
            return self._value

    def save(self, order_id: int) -> None:
        with self._lock:
            if int(order_id) <= self._value:
                return
            self._value = int(order_id)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with open(tmp, "w") as fh:
                json.dump({"last_order_id": self._value}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


def as_store(order_ids: OrderIdStore | str | Path | None) -> OrderIdStore:
    """Accept a store, a file path, or None (memory)."""
    if order_ids is None:
        return MemoryOrderIdStore()
    if isinstance(order_ids, str | Path):
        return FileOrderIdStore(order_ids)
    return order_ids
