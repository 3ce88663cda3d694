"""Persistence: SQLite (WAL, fsync on commit) or any SQLAlchemy database, with versioned migrations.

Entry point: `open_store()` → `Store`. See `joe.store.repositories.Store` for the methods.
"""

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
