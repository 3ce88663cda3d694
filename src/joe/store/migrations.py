"""Versioned schema migrations.

`MIGRATIONS` is an ordered list of `Migration(version, description, apply)`. `migrate(engine)` applies
each one not yet recorded in `schema_version`, one transaction per migration (DDL included: both SQLite
and PostgreSQL have transactional DDL), and records it in the same transaction, so a crash leaves the
database at a whole version. It is idempotent, safe when several processes open a fresh database at
once (SQLite: the write lock; PostgreSQL: an advisory lock), and refuses a database whose version is
newer than this code knows, or one that holds tables but is not a Joe database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text

from joe.core.clock import utcnow
from joe.store import schema
from joe.store.engine import read_connection, safe_url, write_transaction
from joe.store.errors import SchemaError

# Arbitrary constant key for pg_advisory_xact_lock ("joe" in ASCII).
_PG_LOCK_KEY = 0x6A6F65


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `apply(conn)` runs inside the migration's transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t is not schema.schema_version]
    schema.metadata.create_all(conn, tables=tables)


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "initial schema: orders, order_events, fills, positions, signals, pipeline_runs, paper_account, "
        "equity_history, kv_state",
        _v1_initial,
    ),
]


def latest_version() -> int:
    """The newest schema version this code knows."""
    return max((m.version for m in MIGRATIONS), default=0)


def _check_migrations() -> list[Migration]:
    ordered = sorted(MIGRATIONS, key=lambda m: m.version)
    expected = list(range(1, len(ordered) + 1))
    if [m.version for m in ordered] != expected:
        raise SchemaError(f"migration versions must be 1..n without gaps, got {[m.version for m in ordered]}")
    return ordered


def database_version(conn: Connection) -> int:
    """The version recorded in the database (0 for an empty database).

    Raises `SchemaError` if the database has tables but no `schema_version` (not a Joe database) or
    its version is newer than `latest_version()`.
    """
    where = safe_url(conn.engine.url)
    tables = set(inspect(conn).get_table_names())
    if schema.schema_version.name not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:5])
            raise SchemaError(
                f"{where} is not a Joe database: it has tables ({shown}) but no schema_version table"
            )
        return 0
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar_one_or_none() or 0
    known = latest_version()
    if version > known:
        raise SchemaError(
            f"{where} has schema version {version}, newer than this version of Joe knows ({known}); "
            "upgrade Joe, or point JOE_DB_URL at another database"
        )
    return int(version)


def migrate(engine: Engine) -> list[int]:
    """Bring the database up to `latest_version()`; returns the versions applied (empty if none)."""
    ordered = _check_migrations()
    with read_connection(engine) as conn:
        if database_version(conn) >= latest_version():
            return []
    applied: list[int] = []
    for m in ordered:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            # Re-read under the lock: another process may have migrated meanwhile.
            current = database_version(conn)
            if current >= m.version:
                continue
            if current == 0:
                schema.schema_version.create(conn, checkfirst=True)
            m.apply(conn)
            conn.execute(
                insert(schema.schema_version).values(
                    version=m.version, description=m.description, applied_at=utcnow()
                )
            )
        applied.append(m.version)
    return applied
