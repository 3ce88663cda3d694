"""Engine construction and transaction helpers.

SQLite gets the settings that make "committed" mean "on disk": WAL journal, `synchronous=FULL` (the
WAL is fsynced at every commit, so an acknowledged write survives a crash or power loss), foreign
keys, and a busy timeout so two processes on one file wait for each other instead of failing.

pysqlite's own transaction handling is switched off (it does not wrap DDL, so migrations would not be
atomic) and SQLAlchemy emits BEGIN itself: plain (deferred) BEGIN for reads, BEGIN IMMEDIATE for writes,
so a writer takes the write lock up front and never fails half-way with SQLITE_BUSY on lock upgrade.
Other backends (PostgreSQL) use SQLAlchemy's defaults; nothing SQLite-only runs for them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from joe.store.sqltypes import json_dumps

BUSY_TIMEOUT_MS = 30_000
_WRITE = "joe_write"


def safe_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ***, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: str | URL, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, echo: bool = False) -> Engine:
    """Create an engine for `url` with Joe's settings (see the module docstring)."""
    u = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": json_dumps, "echo": echo}
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_pre_ping=True, **kwargs)

    if is_memory_sqlite(u):
        # One shared connection, or every checkout would see a different empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit at the driver; we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _enable_wal(cur, busy_timeout_ms)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cur: Any, busy_timeout_ms: int) -> None:
    """Switch the file to WAL (a persistent setting) unless it already is.

    The switch needs an exclusive lock and SQLite reports "database is locked" at once, without the busy
    handler, when another connection is opening the same fresh file; so retry until the busy timeout.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A write transaction, committed when the block exits normally (rolled back on error).

    On SQLite it starts with BEGIN IMMEDIATE (takes the write lock at once; waits up to the busy
    timeout for another writer).

    `durable=False` commits without waiting for the disk (SQLite ``synchronous=NORMAL`` for this one
    commit; PostgreSQL ``SET LOCAL synchronous_commit = off``): visible to every reader at once and
    atomic, but a power loss (not a process crash) may roll the last such commits back. Only for
    data where being rolled back to an older value is harmless (the audit anchor: see
    `joe.audit.anchor`). A later durable commit makes earlier relaxed ones durable too (one log).
    """
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        relaxed = not durable and engine.dialect.name == "sqlite"
        if relaxed:  # on the driver connection (autocommit there): outside the transaction it governs
            conn.connection.dbapi_connection.execute("PRAGMA synchronous = NORMAL")  # type: ignore[union-attr]
        try:
            with conn.begin():
                if not durable and engine.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
        finally:
            if relaxed:
                conn.connection.dbapi_connection.execute("PRAGMA synchronous = FULL")  # type: ignore[union-attr]


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads; its implicit transaction is rolled back on exit."""
    with engine.connect() as conn:
        yield conn
