"""Persistence: SQLite (WAL, fsync on commit) or any SQLAlchemy database, with versioned migrations.

Entry point: `open_store()` → `Store`. See `joe.store.repositories.Store` for the methods.

The names below are re-exported lazily (`joe.core.lazy`): importing a light submodule such as
`joe.store.errors` or `joe.store.records` (the backtest's `MemoryStore` does) does not load SQLAlchemy.
"""

from typing import TYPE_CHECKING

from joe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from joe.config.mode import TrackRecord
    from joe.store.db import ENV_URL, default_url, open_store, resolve_url
    from joe.store.errors import (
        DuplicatePositionError,
        NotFoundError,
        SchemaError,
        StaleOrderError,
        StoreError,
    )
    from joe.store.migrations import MIGRATIONS, Migration, latest_version, migrate
    from joe.store.records import EquityPoint, PaperAccountRow, PositionRow, RunRow
    from joe.store.repositories import Store
else:  # at run time (the type checker sees the imports above, and flags any other name)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "joe.config.mode": ["TrackRecord"],
            "joe.store.db": ["ENV_URL", "default_url", "open_store", "resolve_url"],
            "joe.store.errors": [
                "DuplicatePositionError",
                "NotFoundError",
                "SchemaError",
                "StaleOrderError",
                "StoreError",
            ],
            "joe.store.migrations": ["MIGRATIONS", "Migration", "latest_version", "migrate"],
            "joe.store.records": ["EquityPoint", "PaperAccountRow", "PositionRow", "RunRow"],
            "joe.store.repositories": ["Store"],
        },
    )

__all__ = [
    "ENV_URL",
    "MIGRATIONS",
    "DuplicatePositionError",
    "EquityPoint",
    "Migration",
    "NotFoundError",
    "PaperAccountRow",
    "PositionRow",
    "RunRow",
    "SchemaError",
    "StaleOrderError",
    "Store",
    "StoreError",
    "TrackRecord",
    "default_url",
    "latest_version",
    "migrate",
    "open_store",
    "resolve_url",
]
