"""Orders, their transitions (order_events) and fills."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, func, select

from joe.core.clock import utcnow
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side, TimeInForce
from joe.core.order import Order, OrderState, OrderTransition
from joe.store._base import StoreBase, check_mode, insert_ignore, upsert
from joe.store.errors import StaleOrderError, StoreError
from joe.store.schema import fills as fills_t
from joe.store.schema import order_events as events_t
from joe.store.schema import orders as orders_t


def _order_values(order: Order, broker: str, mode: str) -> dict[str, Any]:
    i = order.intent
    return {
        "client_order_id": i.client_order_id,
        "signal_id": i.signal_id,
        "leg": i.leg.value,
        "symbol": i.symbol,
        "side": i.side.value,
        "order_type": i.order_type.value,
        "time_in_force": i.time_in_force.value,
        "reduce_only": i.reduce_only,
        "quantity": i.quantity,
        "limit_price": i.limit_price,
        "stop_price": i.stop_price,
        "trailing_distance": i.trailing_distance,
        "trailing_percent": i.trailing_percent,
        "stop_loss": i.stop_loss,
        "take_profit": i.take_profit,
        "state": order.state.value,
        "broker": broker,
        "broker_order_id": order.broker_order_id,
        "filled_quantity": order.filled_quantity,
        "avg_fill_price": order.avg_fill_price,
        "mode": mode,
        "reject_reason": order.reject_reason,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _fill_values(fill: Fill, broker: str, mode: str) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": fill.commission,
        "ts": fill.ts,
        "broker": broker,
        "broker_order_id": fill.broker_order_id,
        "mode": mode,
        "recorded_at": utcnow(),
    }


def _fill_from_row(r: RowMapping) -> Fill:
    return Fill(
        fill_id=r["fill_id"],
        client_order_id=r["client_order_id"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        quantity=r["quantity"],
        price=r["price"],
        ts=r["ts"],
        commission=r["commission"],
        broker_order_id=r["broker_order_id"],
    )


def _order_from_row(r: RowMapping, history: list[OrderTransition], fills: Iterable[Fill]) -> Order:
    intent = OrderIntent(
        client_order_id=r["client_order_id"],
        signal_id=r["signal_id"],
        leg=OrderLeg(r["leg"]),
        symbol=r["symbol"],
        side=Side(r["side"]),
        quantity=r["quantity"],
        order_type=OrderType(r["order_type"]),
        limit_price=r["limit_price"],
        stop_price=r["stop_price"],
        trailing_distance=r["trailing_distance"],
        trailing_percent=r["trailing_percent"],
        stop_loss=r["stop_loss"],
        take_profit=r["take_profit"],
        time_in_force=TimeInForce(r["time_in_force"]),
        reduce_only=bool(r["reduce_only"]),
    )
    # Built field by field (not via transition/apply_fill): the stored state is the truth to restore.
    return Order(
        intent=intent,
        state=OrderState(r["state"]),
        broker_order_id=r["broker_order_id"],
        filled_quantity=r["filled_quantity"],
        avg_fill_price=r["avg_fill_price"],
        fills={f.fill_id: f for f in fills},
        history=history,
        reject_reason=r["reject_reason"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


class OrderRepository(StoreBase):
    """Orders, order events and fills."""

    def save_order(self, order: Order, *, broker: str, mode: str) -> None:
        """Insert or update `order`, append its new transitions as order events, store its new fills.

        Committed before returning (write-ahead: call it before acting on a transition). Transitions
        already stored are recognised by position in `order.history`; an order whose history is shorter
        than the stored one is stale and refused with `StaleOrderError`.
        """
        mode = check_mode(mode)
        with self._write() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(events_t)
                .where(events_t.c.client_order_id == order.client_order_id)
            ).scalar_one()
            if len(order.history) < stored:
                raise StaleOrderError(
                    f"order {order.client_order_id}: history has {len(order.history)} transitions but "
                    f"{stored} are stored; load the stored order instead of saving an older copy"
                )
            upsert(
                conn, orders_t, _order_values(order, broker, mode), ["client_order_id"], keep=["created_at"]
            )
            for seq, t in enumerate(order.history[stored:], start=stored):
                conn.execute(
                    events_t.insert().values(
                        client_order_id=order.client_order_id,
                        seq=seq,
                        ts=t.ts,
                        from_state=t.from_state.value,
                        to_state=t.to_state.value,
                        reason=t.reason,
                    )
                )
            for f in order.fills.values():
                insert_ignore(conn, fills_t, _fill_values(f, broker, mode), ["fill_id"])

    def load_order(self, client_order_id: str) -> Order | None:
        """The stored order with its state, history and fills, or None."""
        found = self._load(select(orders_t).where(orders_t.c.client_order_id == client_order_id))
        return found[0] if found else None

    def orders(
        self, state: set[OrderState] | None = None, mode: str | None = None, broker: str | None = None
    ) -> list[Order]:
        """Stored orders, oldest first, optionally filtered by state(s), mode and broker."""
        q = select(orders_t)
        if state is not None:
            q = q.where(orders_t.c.state.in_([s.value for s in state]))
        if mode is not None:
            q = q.where(orders_t.c.mode == check_mode(mode))
        if broker is not None:
            q = q.where(orders_t.c.broker == broker)
        return self._load(q.order_by(orders_t.c.created_at, orders_t.c.client_order_id))

    def order_context(self, client_order_id: str) -> tuple[str, str] | None:
        """(broker, mode) the order was saved under, or None if it is unknown."""
        with self._read() as conn:
            row = conn.execute(
                select(orders_t.c.broker, orders_t.c.mode).where(
                    orders_t.c.client_order_id == client_order_id
                )
            ).first()
        return (row[0], row[1]) if row else None

    def _load(self, q: Select[Any]) -> list[Order]:
        with self._read() as conn:
            rows = conn.execute(q).mappings().all()
            if not rows:
                return []
            ids = [r["client_order_id"] for r in rows]
            history, fills = self._children(conn, ids)
        return [_order_from_row(r, history[r["client_order_id"]], fills[r["client_order_id"]]) for r in rows]

    @staticmethod
    def _children(
        conn: Connection, ids: list[str]
    ) -> tuple[dict[str, list[OrderTransition]], dict[str, list[Fill]]]:
        history: dict[str, list[OrderTransition]] = defaultdict(list)
        fills: dict[str, list[Fill]] = defaultdict(list)
        # Chunked so the IN list stays under SQLite's bound-parameter limit.
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for e in conn.execute(
                select(events_t).where(events_t.c.client_order_id.in_(chunk)).order_by(events_t.c.seq)
            ).mappings():
                history[e["client_order_id"]].append(
                    OrderTransition(
                        OrderState(e["from_state"]), OrderState(e["to_state"]), e["ts"], e["reason"]
                    )
                )
            for f in conn.execute(
                select(fills_t)
                .where(fills_t.c.client_order_id.in_(chunk))
                .order_by(fills_t.c.ts, fills_t.c.fill_id)
            ).mappings():
                fills[f["client_order_id"]].append(_fill_from_row(f))
        return history, fills

    def record_fill(self, fill: Fill, *, broker: str, mode: str) -> bool:
        """Store a fill once; False if its `fill_id` is already stored (duplicates never insert).

        The order must have been saved first (foreign key): a fill for an unknown order raises
        `StoreError`.
        """
        mode = check_mode(mode)
        with self._write() as conn:
            known = conn.execute(
                select(orders_t.c.client_order_id).where(orders_t.c.client_order_id == fill.client_order_id)
            ).first()
            if known is None:
                raise StoreError(
                    f"fill {fill.fill_id} refers to unknown order {fill.client_order_id}; "
                    "save the order first"
                )
            return insert_ignore(conn, fills_t, _fill_values(fill, broker, mode), ["fill_id"])

    def fills(self, client_order_id: str | None = None, mode: str | None = None) -> list[Fill]:
        """Stored fills in time order, optionally for one order or one mode."""
        q = select(fills_t)
        if client_order_id is not None:
            q = q.where(fills_t.c.client_order_id == client_order_id)
        if mode is not None:
            q = q.where(fills_t.c.mode == check_mode(mode))
        with self._read() as conn:
            rows = conn.execute(q.order_by(fills_t.c.ts, fills_t.c.fill_id)).mappings().all()
        return [_fill_from_row(r) for r in rows]
