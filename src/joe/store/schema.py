"""Table definitions (SQLAlchemy 2 Core): the current schema (what migrations 1..n produce).

Money, prices and sizes are `DecimalText` (exact), timestamps are `UTCDateTime` (aware UTC). Every
table is portable between SQLite and PostgreSQL: the only dialect-specific parts are the partial
unique index (which both dialects support) and its `*_where` keywords.

Migration 1 creates the frozen copy in `schema_v1`; later migrations alter it step by step, so a
fresh database replays v1 → v2 → ... exactly as an old one did. When you change a table here, add
the migration that makes an existing database match (the migration tests compare both).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from joe.store.sqltypes import DecimalText, UTCDateTime

MODES = ("paper", "live", "shadow")
_MODE_CHECK = "mode IN ('paper', 'live', 'shadow')"

# Stable constraint names, so later migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(128)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", ID, primary_key=True),
    Column("signal_id", ID, nullable=False, index=True),
    Column("leg", String(16), nullable=False),
    Column("symbol", String(64), nullable=False, index=True),
    Column("side", String(4), nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("reduce_only", Boolean, nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("limit_price", DecimalText),
    Column("stop_price", DecimalText),
    Column("trailing_distance", DecimalText),
    Column("trailing_percent", DecimalText),
    Column("stop_loss", DecimalText),
    Column("take_profit", DecimalText),
    Column("state", String(20), nullable=False, index=True),
    Column("broker", String(32), nullable=False),
    Column("broker_order_id", String(128), index=True),
    Column("filled_quantity", DecimalText, nullable=False),
    Column("avg_fill_price", DecimalText),
    Column("mode", String(8), nullable=False),
    Column("reject_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # v2: optimistic concurrency (a save must carry the version it loaded), bracket links, retries.
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("parent_client_order_id", ID, index=True),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(_MODE_CHECK, name="mode"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_order_id", ID, ForeignKey("orders.client_order_id"), nullable=False),
    # Index of the transition in Order.history; unique per order so a transition is stored once.
    Column("seq", Integer, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("from_state", String(20), nullable=False),
    Column("to_state", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", JSON),
    # v2: the change was learned by asking the broker (reconciliation) or is a broker-truth correction.
    Column("from_reconciliation", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("client_order_id", "seq"),
)

fills = Table(
    "fills",
    metadata,
    Column("fill_id", ID, primary_key=True),
    Column("client_order_id", ID, ForeignKey("orders.client_order_id"), nullable=False, index=True),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("commission", DecimalText, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("broker", String(32), nullable=False),
    Column("broker_order_id", String(128)),
    Column("mode", String(8), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # v2: `fill_id` is the broker's execution identity without its correction suffix; a higher
    # `revision` replaces the row. `audited` is the outbox flag: false until the audit log has it.
    Column("revision", Integer, nullable=False, server_default=text("0")),
    Column("raw_exec_id", String(128)),
    Column("audited", Boolean, nullable=False, server_default=text("true")),
    # v5: the currency the commission is in ("" = not stated: the instrument's quote currency).
    Column("commission_currency", String(8), nullable=False, server_default=text("''")),
    CheckConstraint(_MODE_CHECK, name="mode"),
)

# v2: commissions that arrived before their fill; moved onto the fill when it comes.
pending_commissions = Table(
    "pending_commissions",
    metadata,
    Column("fill_id", ID, primary_key=True),
    Column("broker", String(32), nullable=False),
    Column("commission", DecimalText, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("ts", UTCDateTime),
    Column("recorded_at", UTCDateTime, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mode", String(8), nullable=False),
    Column("broker", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    # Signed: > 0 long, < 0 short (as joe.core.models.Position).
    Column("quantity", DecimalText, nullable=False),
    Column("avg_price", DecimalText, nullable=False),
    Column("stop_loss", DecimalText),
    Column("take_profit", DecimalText),
    Column("trailing_distance", DecimalText),
    # Best price since entry in the position's favour (highest for a long, lowest for a short).
    Column("high_water", DecimalText),
    Column("signal_id", ID),
    Column("broker_position_id", String(128)),
    Column("status", String(8), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("exit_price", DecimalText),
    Column("exit_reason", Text),
    Column("realized_pnl", DecimalText, nullable=False),
    Column("fees", DecimalText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_MODE_CHECK, name="mode"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    Index("ix_positions_mode_status", "mode", "status"),
    # At most one *open* position per signal and account: a retry can never open a second one.
    Index(
        "uq_positions_open_signal",
        "mode",
        "broker",
        "signal_id",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

signals = Table(
    "signals",
    metadata,
    Column("signal_id", ID, primary_key=True),
    Column("run_id", ID, index=True),
    Column("symbol", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("direction", String(5), nullable=False),
    Column("entry", DecimalText, nullable=False),
    Column("stop_loss", DecimalText, nullable=False),
    Column("take_profit", DecimalText, nullable=False),
    Column("trailing_distance", DecimalText),
    Column("quantity", DecimalText),
    Column("confidence", Double, nullable=False),
    Column("score", Double),
    Column("risk_grade", String(16)),
    Column("reason", Text, nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("meta", JSON),
    Column("created_at", UTCDateTime, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("finished_at", UTCDateTime),
    Column("mode", String(8), nullable=False),
    Column("broker", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("as_of", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("summary", JSON),
    Column("report_dir", Text),
    CheckConstraint(_MODE_CHECK, name="mode"),
)

paper_account = Table(
    "paper_account",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("currency", String(8), nullable=False),
    Column("cash", DecimalText, nullable=False),
    Column("starting_cash", DecimalText, nullable=False),
    Column("realized_pnl", DecimalText, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

equity_history = Table(
    "equity_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("mode", String(8), nullable=False),
    Column("equity", DecimalText, nullable=False),
    Column("cash", DecimalText, nullable=False),
    # Whose equity (v4): "broker:account_id" for a broker account (live/shadow), "" for the paper book and
    # for rows written before v4 (their account is unknown: never any account's loss/drawdown baseline).
    Column("account", String(160), nullable=False, server_default=""),
    CheckConstraint(_MODE_CHECK, name="mode"),
    Index("ix_equity_history_mode_ts", "mode", "ts"),
)

kv_state = Table(
    "kv_state",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", JSON),
    Column("updated_at", UTCDateTime, nullable=False),
)

# v3: the Reconciler's persistent checkpoint per account (executions are read from here on, with
# an overlap; fills are unique by execution identity, so a re-read applies nothing twice).
reconcile_checkpoints = Table(
    "reconcile_checkpoints",
    metadata,
    Column("broker", String(32), primary_key=True),
    Column("mode", String(8), primary_key=True),
    Column("checkpoint", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# v3: what the Reconciler recorded about the account: orders/positions/fills Joe did not place
# (kind "external_order" / "external_position" / "external_fill"), and how many times in a row the
# broker did not know one of Joe's orders (kind "miss"; `count`). `ref` is the broker's id.
reconcile_items = Table(
    "reconcile_items",
    metadata,
    Column("broker", String(32), primary_key=True),
    Column("mode", String(8), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("ref", ID, primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("count", Integer, nullable=False),
    Column("detail", JSON),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

JOE_TABLES = frozenset(metadata.tables)
