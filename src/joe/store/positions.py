"""Positions: open, update (stops, size, trailing high-water), close, and queries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from joe.core.clock import utcnow
from joe.core.models import ZERO
from joe.store._base import StoreBase, check_mode
from joe.store.errors import DuplicatePositionError, NotFoundError, StoreError
from joe.store.records import PositionRow
from joe.store.schema import positions as pos_t


def _row(r: RowMapping) -> PositionRow:
    return PositionRow(**{f: r[f] for f in PositionRow.__dataclass_fields__})


class PositionRepository(StoreBase):
    """Positions per (mode, broker). At most one open position per signal is enforced by the database."""

    def open_position(
        self,
        *,
        mode: str,
        broker: str,
        symbol: str,
        quantity: Decimal,
        avg_price: Decimal,
        opened_at: datetime | None = None,
        signal_id: str | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        trailing_distance: Decimal | None = None,
        high_water: Decimal | None = None,
        broker_position_id: str | None = None,
        fees: Decimal = ZERO,
    ) -> PositionRow:
        """Store a new open position (signed `quantity`) and return it with its id.

        Raises `DuplicatePositionError` if (mode, broker, signal_id) already has an open position.
        """
        mode = check_mode(mode)
        if quantity == 0:
            raise ValueError("a position's quantity must not be zero")
        now = utcnow()
        values: dict[str, Any] = {
            "mode": mode,
            "broker": broker,
            "symbol": symbol,
            "quantity": quantity,
            "avg_price": avg_price,
            "stop_loss": stop_loss,
            "take_profit": take_profit,
            "trailing_distance": trailing_distance,
            "high_water": high_water if high_water is not None else avg_price,
            "signal_id": signal_id,
            "broker_position_id": broker_position_id,
            "status": "open",
            "opened_at": opened_at or now,
            "realized_pnl": ZERO,
            "fees": fees,
            "updated_at": now,
        }
        with self._write() as conn:
            if signal_id is not None and self._open_for_signal(conn, mode, broker, signal_id) is not None:
                raise DuplicatePositionError(
                    f"an open {mode} position on {broker} already exists for signal {signal_id}"
                )
            key = conn.execute(pos_t.insert().values(**values)).inserted_primary_key
            if key is None:  # pragma: no cover - every supported backend reports it
                raise StoreError("the database did not report the new position's id")
            pid = int(key[0])
            return self._get(conn, pid)

    def update_position(
        self,
        position_id: int,
        *,
        quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        trailing_distance: Decimal | None = None,
        high_water: Decimal | None = None,
        realized_pnl: Decimal | None = None,
        fees: Decimal | None = None,
        broker_position_id: str | None = None,
    ) -> PositionRow:
        """Change an open position; arguments left as None are not changed. Returns the new row."""
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "quantity": quantity,
                "avg_price": avg_price,
                "stop_loss": stop_loss,
                "take_profit": take_profit,
                "trailing_distance": trailing_distance,
                "high_water": high_water,
                "realized_pnl": realized_pnl,
                "fees": fees,
                "broker_position_id": broker_position_id,
            }.items()
            if v is not None
        }
        if quantity is not None and quantity == 0:
            raise ValueError("use close_position to take a position to zero")
        with self._write() as conn:
            self._require_open(conn, position_id)
            conn.execute(
                update(pos_t).where(pos_t.c.id == position_id).values(**changes, updated_at=utcnow())
            )
            return self._get(conn, position_id)

    def close_position(
        self,
        position_id: int,
        exit_price: Decimal,
        exit_reason: str,
        realized_pnl: Decimal,
        closed_at: datetime | None = None,
    ) -> PositionRow:
        """Mark an open position closed with its exit and total realized P&L; returns the closed row.

        Raises `StoreError` if it is already closed (so a double close is noticed, not silently merged).
        """
        now = utcnow()
        with self._write() as conn:
            self._require_open(conn, position_id)
            conn.execute(
                update(pos_t)
                .where(pos_t.c.id == position_id)
                .values(
                    status="closed",
                    exit_price=exit_price,
                    exit_reason=exit_reason,
                    realized_pnl=realized_pnl,
                    closed_at=closed_at or now,
                    updated_at=now,
                )
            )
            return self._get(conn, position_id)

    def get_position(self, position_id: int) -> PositionRow | None:
        """One position by id, or None."""
        with self._read() as conn:
            r = conn.execute(select(pos_t).where(pos_t.c.id == position_id)).mappings().first()
        return _row(r) if r else None

    def open_positions(self, mode: str, broker: str | None = None) -> list[PositionRow]:
        """Open positions for a mode (and broker), oldest first."""
        q = select(pos_t).where(pos_t.c.mode == check_mode(mode), pos_t.c.status == "open")
        if broker is not None:
            q = q.where(pos_t.c.broker == broker)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q.order_by(pos_t.c.opened_at, pos_t.c.id)).mappings()]

    def closed_positions(
        self, mode: str, broker: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[PositionRow]:
        """Closed positions for a mode, in closing order; `since` filters on `closed_at`, `limit` keeps
        the most recent ones."""
        q = select(pos_t).where(pos_t.c.mode == check_mode(mode), pos_t.c.status == "closed")
        if broker is not None:
            q = q.where(pos_t.c.broker == broker)
        if since is not None:
            q = q.where(pos_t.c.closed_at >= since)
        q = q.order_by(pos_t.c.closed_at.desc(), pos_t.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            rows = [_row(r) for r in conn.execute(q).mappings()]
        rows.reverse()
        return rows

    def position_for_signal(self, mode: str, broker: str, signal_id: str) -> PositionRow | None:
        """The position opened for a signal (the open one if any, else the latest closed), or None.

        Used to avoid opening a second position for a signal that was already traded.
        """
        q = (
            select(pos_t)
            .where(pos_t.c.mode == check_mode(mode), pos_t.c.broker == broker, pos_t.c.signal_id == signal_id)
            .order_by((pos_t.c.status == "open").desc(), pos_t.c.id.desc())
        )
        with self._read() as conn:
            r = conn.execute(q).mappings().first()
        return _row(r) if r else None

    @staticmethod
    def _open_for_signal(conn: Connection, mode: str, broker: str, signal_id: str) -> int | None:
        return conn.execute(
            select(pos_t.c.id).where(
                pos_t.c.mode == mode,
                pos_t.c.broker == broker,
                pos_t.c.signal_id == signal_id,
                pos_t.c.status == "open",
            )
        ).scalar_one_or_none()

    @staticmethod
    def _get(conn: Connection, position_id: int) -> PositionRow:
        return _row(conn.execute(select(pos_t).where(pos_t.c.id == position_id)).mappings().one())

    @staticmethod
    def _require_open(conn: Connection, position_id: int) -> None:
        status = conn.execute(select(pos_t.c.status).where(pos_t.c.id == position_id)).scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"position {position_id} does not exist")
        if status != "open":
            raise StoreError(f"position {position_id} is already {status}")
