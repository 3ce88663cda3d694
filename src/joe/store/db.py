"""Opening the store: URL resolution, directory creation, engine settings, migration, friendly errors."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from joe.store.engine import is_memory_sqlite, make_engine, safe_url
from joe.store.errors import StoreError
from joe.store.migrations import migrate
from joe.store.repositories import Store

ENV_URL = "JOE_DB_URL"
DB_FILENAME = "joe.db"


def default_url(data_dir: Path | str = "data") -> str:
    """`sqlite:///<data_dir>/joe.db`."""
    return f"sqlite:///{Path(data_dir) / DB_FILENAME}"


def resolve_url(url: str | None = None, data_dir: Path | str = "data") -> str:
    """The URL to use: the argument, else $JOE_DB_URL, else the SQLite file under `data_dir`."""
    return url or os.environ.get(ENV_URL) or default_url(data_dir)


def open_store(url: str | None = None, data_dir: Path | str = "data") -> Store:
    """Open (and create or migrate) Joe's database and return a `Store`.

    `url` is any SQLAlchemy URL (e.g. `postgresql+psycopg://user:pw@host/joe`); without it
    `$JOE_DB_URL`, else `sqlite:///<data_dir>/joe.db`. For a SQLite file its directory is created.
    Raises `StoreError` (naming the URL, password hidden) when the database cannot be opened, is not
    a Joe database, or has a newer schema than this code.
    """
    raw = resolve_url(url, data_dir)
    shown = safe_url(raw)
    try:
        u = make_url(raw)
    except ArgumentError as e:
        raise StoreError(f"invalid database URL {shown!r}: {e}") from None
    _prepare_sqlite_dir(u, shown)
    try:
        engine = make_engine(u)
    except (NoSuchModuleError, ImportError) as e:
        raise StoreError(f"cannot open store at {shown}: database driver not installed ({e})") from None
    try:
        migrate(engine)
    except StoreError:
        engine.dispose()
        raise
    except DBAPIError as e:
        engine.dispose()
        raise StoreError(f"cannot open store at {shown}: {e.orig}") from e
    return Store(engine)


def _prepare_sqlite_dir(u: URL, shown: str) -> None:
    if u.get_backend_name() != "sqlite" or is_memory_sqlite(u) or not u.database:
        return
    if u.database.startswith("file:"):  # URI filenames: leave them to SQLite
        return
    parent = Path(u.database).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot open store at {shown}: cannot create directory {parent}: {e}") from None
