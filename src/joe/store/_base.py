"""Shared plumbing for the repositories: transactions (with an optional ambient `atomic()` block),
portable insert-or-ignore / upsert, error wrapping, and value checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from joe.store.engine import read_connection, safe_url, write_transaction
from joe.store.errors import StoreError
from joe.store.schema import MODES

# (store, connection) of the innermost `atomic()` block in this context (thread / asyncio task).
_AMBIENT: ContextVar[tuple[object, Connection] | None] = ContextVar("joe_store_ambient", default=None)


def check_mode(mode: str) -> str:
    """Validate a trading mode ("paper" | "live" | "shadow"); StrEnum values are accepted."""
    m = str(mode.value if hasattr(mode, "value") else mode)
    if m not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return m


class StoreBase:
    """Holds the engine; each public write runs in its own committed transaction (or the ambient one)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = safe_url(engine.url)

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[Connection]:
        """A write transaction committed before the block's caller proceeds.

        Inside `atomic()` the ambient transaction is used instead, and the commit happens when the
        outermost `atomic()` block exits. `durable=False`: see `engine.write_transaction`.
        """
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self:
            yield ambient[1]
            return
        try:
            with write_transaction(self.engine, durable=durable) as conn:
                yield conn
        except StoreError:
            raise
        except DBAPIError as e:
            raise StoreError(f"write to {self.url} failed: {e.orig}") from e

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self:
            yield ambient[1]
            return
        try:
            with read_connection(self.engine) as conn:
                yield conn
        except DBAPIError as e:
            raise StoreError(f"read from {self.url} failed: {e.orig}") from e

    @contextmanager
    def atomic(self, *, durable: bool = True) -> Iterator[None]:
        """Group several writes into one transaction: all are committed together, or none.

        Example: a paper fill, its position change and the cash update. Nested blocks join the outer one
        (and its durability). `durable=False` commits without waiting for the disk: only for values a
        power loss may harmlessly roll back (see `engine.write_transaction`).
        """
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self:
            yield
            return
        with self._write(durable) as conn:
            token = _AMBIENT.set((self, conn))
            try:
                yield
            finally:
                _AMBIENT.reset(token)

    def close(self) -> None:
        """Release pooled connections (the store can still be used afterwards; it reconnects)."""
        self.engine.dispose()


def insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str]) -> bool:
    """Insert a row unless its key already exists; True if inserted. Never creates a duplicate.

    Uses ON CONFLICT DO NOTHING on SQLite and PostgreSQL (the primary key / unique index decides), and
    a savepoint around a plain INSERT elsewhere. Other integrity errors (foreign keys) still raise.
    """
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        mod = sqlite if name == "sqlite" else postgresql
        stmt = mod.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(key))
        if name == "postgresql":
            # psycopg 3 reports rowcount -1 here; RETURNING says for sure whether a row went in.
            return conn.execute(stmt.returning(table.c[key[0]])).first() is not None
        return conn.execute(stmt).rowcount == 1
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
    except IntegrityError:
        return False
    return True


def upsert(
    conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str], keep: Sequence[str] = ()
) -> None:
    """Insert a row, or update it in place if its key exists. Columns in `keep` are not overwritten."""
    cond = and_(*(table.c[k] == values[k] for k in key))
    changes = {k: v for k, v in values.items() if k not in key and k not in keep}
    if conn.execute(update(table).where(cond).values(**changes)).rowcount == 0:
        conn.execute(insert(table).values(**values))
