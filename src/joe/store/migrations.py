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

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn

from joe.core.clock import utcnow
from joe.store import schema, schema_v1
from joe.store.engine import read_connection, safe_url, write_transaction
from joe.store.errors import SchemaError
from joe.store.sqltypes import DecimalText, UTCDateTime

# Arbitrary constant key for pg_advisory_xact_lock ("joe" in ASCII).
_PG_LOCK_KEY = 0x6A6F65


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `apply(conn)` runs inside the migration's transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    tables = [t for t in schema_v1.metadata.sorted_tables if t is not schema_v1.schema_version]
    schema_v1.metadata.create_all(conn, tables=tables)


def _add_column(conn: Connection, table: str, column: Column[object]) -> None:
    ddl = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))


def _v2_order_truth(conn: Connection) -> None:
    # Frozen copies of the v2 definitions (not `schema`'s live objects), so later edits there never
    # change what this step does.
    _add_column(conn, "orders", Column("version", Integer, nullable=False, server_default=text("0")))
    conn.execute(text("UPDATE orders SET version = 1"))  # rows stored before v2 count as saved once
    _add_column(conn, "orders", Column("parent_client_order_id", String(128)))
    _add_column(conn, "orders", Column("attempt", Integer, nullable=False, server_default=text("0")))
    _add_column(
        conn,
        "order_events",
        Column("from_reconciliation", Boolean, nullable=False, server_default=text("false")),
    )
    _add_column(conn, "fills", Column("revision", Integer, nullable=False, server_default=text("0")))
    _add_column(conn, "fills", Column("raw_exec_id", String(128)))
    _add_column(conn, "fills", Column("audited", Boolean, nullable=False, server_default=text("true")))
    md = MetaData(naming_convention=schema.metadata.naming_convention)
    orders = Table("orders", md, Column("parent_client_order_id", String(128)))
    Index("ix_orders_parent_client_order_id", orders.c.parent_client_order_id).create(conn)
    Table(
        "pending_commissions",
        md,
        Column("fill_id", String(128), primary_key=True),
        Column("broker", String(32), nullable=False),
        Column("commission", DecimalText, nullable=False),
        Column("currency", String(8), nullable=False),
        Column("ts", UTCDateTime),
        Column("recorded_at", UTCDateTime, nullable=False),
    ).create(conn)


def _v3_reconciler(conn: Connection) -> None:
    md = MetaData(naming_convention=schema.metadata.naming_convention)
    Table(
        "reconcile_checkpoints",
        md,
        Column("broker", String(32), primary_key=True),
        Column("mode", String(8), primary_key=True),
        Column("checkpoint", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    ).create(conn)
    Table(
        "reconcile_items",
        md,
        Column("broker", String(32), primary_key=True),
        Column("mode", String(8), primary_key=True),
        Column("kind", String(24), primary_key=True),
        Column("ref", String(128), primary_key=True),
        Column("symbol", String(64), nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("count", Integer, nullable=False),
        Column("detail", JSON),
        Column("first_seen", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    ).create(conn)


def _v4_equity_account(conn: Connection) -> None:
    # Rows before v4 get "": their account is unknown, so no broker account takes them as its baseline.
    column: Column[object] = Column("account", String(160), nullable=False, server_default=text("''"))
    _add_column(conn, "equity_history", column)


def _v5_commission_currency(conn: Connection) -> None:
    # Rows before v5 get "": their commission's currency was not kept (the instrument's, as read then).
    column: Column[object] = Column(
        "commission_currency", String(8), nullable=False, server_default=text("''")
    )
    _add_column(conn, "fills", column)


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "initial schema: orders, order_events, fills, positions, signals, pipeline_runs, paper_account, "
        "equity_history, kv_state",
        _v1_initial,
    ),
    Migration(
        2,
        "order truth: orders.version (optimistic concurrency), parent links and attempts; fills by "
        "execution identity with revision and an audited flag; order_events.from_reconciliation; "
        "pending_commissions",
        _v2_order_truth,
    ),
    Migration(
        3,
        "reconciler: reconcile_checkpoints (executions since a persistent checkpoint) and "
        "reconcile_items (external orders/positions/fills, missed-order counts)",
        _v3_reconciler,
    ),
    Migration(
        4,
        "equity_history.account: the daily-loss and drawdown baselines per broker account "
        "(broker:account_id), not per mode only; older rows keep account '' (unknown, never a baseline)",
        _v4_equity_account,
    ),
    Migration(
        5,
        "fills.commission_currency: the currency a commission is charged in (IBKR may charge a USD "
        "stock's commission in the account's base currency); older rows keep '' (not stated)",
        _v5_commission_currency,
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
