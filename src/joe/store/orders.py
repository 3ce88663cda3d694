"""Orders, their transitions (order_events) and fills."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, delete, func, select, update

from joe.core.clock import utcnow
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side, TimeInForce
from joe.core.order import Order, OrderState, OrderTransition
from joe.store._base import StoreBase, check_mode, insert_ignore, upsert
from joe.store.errors import StaleOrderError, StoreError
from joe.store.schema import fills as fills_t
from joe.store.schema import order_events as events_t
from joe.store.schema import orders as orders_t
from joe.store.schema import pending_commissions as pending_t


@dataclass(frozen=True, slots=True)
class PendingCommission:
    """A commission stored before its fill arrived (it is moved onto the fill when it does)."""

    fill_id: str
    broker: str
    commission: Decimal
    currency: str
    ts: datetime | None


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
        "parent_client_order_id": order.parent_client_order_id,
        "attempt": order.attempt,
    }


def _fill_values(
    fill: Fill, broker: str, mode: str, revision: int = 0, audited: bool = True
) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": fill.commission,
        "commission_currency": fill.commission_currency,
        "ts": fill.ts,
        "broker": broker,
        "broker_order_id": fill.broker_order_id,
        "mode": mode,
        "recorded_at": utcnow(),
        "revision": revision,
        "audited": audited,
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
        commission_currency=r["commission_currency"] or "",
    )


def _order_from_row(
    r: RowMapping, history: list[OrderTransition], fills: Iterable[tuple[Fill, int]]
) -> Order:
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
        fills={f.fill_id: f for f, _ in fills},
        history=history,
        reject_reason=r["reject_reason"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        version=int(r["version"]),
        parent_client_order_id=r["parent_client_order_id"],
        attempt=int(r["attempt"]),
        fill_revisions={f.fill_id: rev for f, rev in fills},
    )


class OrderRepository(StoreBase):
    """Orders, order events and fills."""

    def save_order(
        self, order: Order, *, broker: str, mode: str, pending_audit: Collection[str] = ()
    ) -> None:
        """Insert or update `order` with optimistic concurrency, append its new transitions as order
        events, and store its new or changed fills (a higher revision or a new commission updates
        the row). Committed before returning (write-ahead: call it before acting on a transition).

        `order.version` must be the version last loaded or saved (0 for a new order); on success it
        is incremented. A copy whose version is behind the stored one (another copy saved since) is
        refused with `StaleOrderError` and nothing is written: load the stored order and continue
        from it. Fills named in `pending_audit` are stored with `audited = false` (the audit outbox;
        see `unaudited_fills` / `mark_fills_audited`).
        """
        mode = check_mode(mode)
        coid = order.client_order_id
        values = _order_values(order, broker, mode)
        with self._write() as conn:
            if order.version == 0:
                exists = conn.execute(
                    select(orders_t.c.version).where(orders_t.c.client_order_id == coid)
                ).first()
                if exists is not None:
                    raise StaleOrderError(
                        f"order {coid}: a new copy (version 0) cannot overwrite the stored order "
                        f"(version {exists[0]}); load the stored order and continue from it"
                    )
                conn.execute(orders_t.insert().values(**values, version=1))
            else:
                changes = {k: v for k, v in values.items() if k not in ("client_order_id", "created_at")}
                done = conn.execute(
                    update(orders_t)
                    .where(orders_t.c.client_order_id == coid, orders_t.c.version == order.version)
                    .values(**changes, version=order.version + 1)
                ).rowcount
                if done != 1:
                    stored = conn.execute(
                        select(orders_t.c.version).where(orders_t.c.client_order_id == coid)
                    ).scalar_one_or_none()
                    raise StaleOrderError(
                        f"order {coid}: this copy is version {order.version} but the store has "
                        f"{stored if stored is not None else 'no such order'}; another copy saved since. "
                        "Load the stored order and continue from it"
                    )
            stored_events = conn.execute(
                select(func.count()).select_from(events_t).where(events_t.c.client_order_id == coid)
            ).scalar_one()
            if len(order.history) < stored_events:
                raise StaleOrderError(
                    f"order {coid}: history has {len(order.history)} transitions but "
                    f"{stored_events} are stored; load the stored order instead of saving an older copy"
                )
            for seq, t in enumerate(order.history[stored_events:], start=stored_events):
                conn.execute(
                    events_t.insert().values(
                        client_order_id=coid,
                        seq=seq,
                        ts=t.ts,
                        from_state=t.from_state.value,
                        to_state=t.to_state.value,
                        reason=t.reason,
                        from_reconciliation=t.from_reconciliation,
                    )
                )
            self._save_fills(conn, order, broker, mode, set(pending_audit))
        order.version += 1

    @staticmethod
    def _save_fills(conn: Connection, order: Order, broker: str, mode: str, pending_audit: set[str]) -> None:
        if not order.fills:
            return
        stored = {
            r["fill_id"]: r
            for r in conn.execute(
                select(
                    fills_t.c.fill_id, fills_t.c.revision, fills_t.c.commission, fills_t.c.commission_currency
                ).where(fills_t.c.client_order_id == order.client_order_id)
            ).mappings()
        }
        for fid, f in order.fills.items():
            rev = order.fill_revisions.get(fid, 0)
            audited = fid not in pending_audit
            row = stored.get(fid)
            if row is None:
                insert_ignore(conn, fills_t, _fill_values(f, broker, mode, rev, audited), ["fill_id"])
            elif rev > row["revision"]:
                vals = _fill_values(f, broker, mode, rev, audited)
                del vals["fill_id"]
                conn.execute(update(fills_t).where(fills_t.c.fill_id == fid).values(**vals))
            elif (f.commission, f.commission_currency) != (row["commission"], row["commission_currency"]):
                conn.execute(
                    update(fills_t)
                    .where(fills_t.c.fill_id == fid)
                    .values(commission=f.commission, commission_currency=f.commission_currency)
                )

    def unaudited_fills(self) -> list[tuple[Fill, str, str]]:
        """(fill, broker, mode) of every stored fill whose audit record was not confirmed written,
        oldest first: the outbox to re-audit (after a failed audit write or a crash)."""
        with self._read() as conn:
            rows = (
                conn.execute(
                    select(fills_t)
                    .where(fills_t.c.audited.is_(False))
                    .order_by(fills_t.c.ts, fills_t.c.fill_id)
                )
                .mappings()
                .all()
            )
        return [(_fill_from_row(r), r["broker"], r["mode"]) for r in rows]

    def mark_fills_audited(self, fill_ids: Collection[str]) -> None:
        """Record that the audit log now holds these fills."""
        if not fill_ids:
            return
        with self._write() as conn:
            conn.execute(update(fills_t).where(fills_t.c.fill_id.in_(list(fill_ids))).values(audited=True))

    def add_pending_commission(
        self,
        fill_id: str,
        commission: Decimal,
        *,
        broker: str,
        currency: str = "",
        ts: datetime | None = None,
    ) -> None:
        """Keep a commission whose fill has not arrived yet (a later one for the same fill replaces it)."""
        values = {
            "fill_id": fill_id,
            "broker": broker,
            "commission": commission,
            "currency": currency,
            "ts": ts,
            "recorded_at": utcnow(),
        }
        with self._write() as conn:
            upsert(conn, pending_t, values, ["fill_id"])

    def pending_commission(self, fill_id: str) -> PendingCommission | None:
        """The commission waiting for `fill_id`, or None."""
        with self._read() as conn:
            r = conn.execute(select(pending_t).where(pending_t.c.fill_id == fill_id)).mappings().first()
        if r is None:
            return None
        return PendingCommission(r["fill_id"], r["broker"], r["commission"], r["currency"], r["ts"])

    def drop_pending_commission(self, fill_id: str) -> None:
        """Forget a pending commission (call inside the `atomic()` block that stores its fill)."""
        with self._write() as conn:
            conn.execute(delete(pending_t).where(pending_t.c.fill_id == fill_id))

    def pending_commissions(self) -> list[PendingCommission]:
        """Every commission still waiting for its fill."""
        with self._read() as conn:
            rows = conn.execute(select(pending_t).order_by(pending_t.c.fill_id)).mappings().all()
        return [
            PendingCommission(r["fill_id"], r["broker"], r["commission"], r["currency"], r["ts"])
            for r in rows
        ]

    def child_orders(self, parent_client_order_id: str) -> list[Order]:
        """Orders linked to `parent_client_order_id` (a bracket's stop and target), oldest first."""
        return self._load(
            select(orders_t)
            .where(orders_t.c.parent_client_order_id == parent_client_order_id)
            .order_by(orders_t.c.created_at, orders_t.c.client_order_id)
        )

    def orders_for_signal(self, signal_id: str) -> list[Order]:
        """Every order of one signal (all legs and attempts), oldest first."""
        return self._load(
            select(orders_t)
            .where(orders_t.c.signal_id == signal_id)
            .order_by(orders_t.c.created_at, orders_t.c.client_order_id)
        )

    def order_ids_for_signal(self, signal_id: str) -> list[str]:
        """The client order ids of one signal's orders, in `orders_for_signal`'s order (ids only: a
        caller holding cached copies loads just the ones it lacks, with `load_orders`)."""
        with self._read() as conn:
            rows = conn.execute(
                select(orders_t.c.client_order_id)
                .where(orders_t.c.signal_id == signal_id)
                .order_by(orders_t.c.created_at, orders_t.c.client_order_id)
            ).all()
        return [r[0] for r in rows]

    def order_ids_for_signals(self, signal_ids: list[str]) -> dict[str, list[str]]:
        """`order_ids_for_signal` of many signals in one read: signal id -> its order ids (a signal
        without orders maps to [])."""
        out: dict[str, list[str]] = {sid: [] for sid in signal_ids}
        with self._read() as conn:
            for i in range(0, len(signal_ids), 500):  # under SQLite's bound-parameter limit
                rows = conn.execute(
                    select(orders_t.c.signal_id, orders_t.c.client_order_id)
                    .where(orders_t.c.signal_id.in_(signal_ids[i : i + 500]))
                    .order_by(orders_t.c.created_at, orders_t.c.client_order_id)
                ).all()
                for sid, coid in rows:
                    out[sid].append(coid)
        return out

    def load_orders(self, client_order_ids: list[str]) -> list[Order]:
        """The stored orders of `client_order_ids` (unknown ids are left out), oldest first."""
        out: list[Order] = []
        for i in range(0, len(client_order_ids), 500):  # under SQLite's bound-parameter limit
            chunk = client_order_ids[i : i + 500]
            out += self._load(select(orders_t).where(orders_t.c.client_order_id.in_(chunk)))
        return sorted(out, key=lambda o: (o.created_at, o.client_order_id))

    def fill_owner(self, fill_id: str) -> str | None:
        """The client order id a stored fill belongs to, or None."""
        with self._read() as conn:
            row = conn.execute(select(fills_t.c.client_order_id).where(fills_t.c.fill_id == fill_id)).first()
        return row[0] if row else None

    def leg_attempts(self, signal_id: str, leg: str) -> list[Order]:
        """Every stored attempt of one leg of one signal (e.g. retried exits), by attempt number."""
        return self._load(
            select(orders_t)
            .where(orders_t.c.signal_id == signal_id, orders_t.c.leg == leg)
            .order_by(orders_t.c.attempt, orders_t.c.created_at)
        )

    def load_order(self, client_order_id: str) -> Order | None:
        """The stored order with its state, history and fills, or None."""
        found = self._load(select(orders_t).where(orders_t.c.client_order_id == client_order_id))
        return found[0] if found else None

    def orders(
        self,
        state: set[OrderState] | None = None,
        mode: str | None = None,
        broker: str | None = None,
        *,
        symbols: set[str] | None = None,
        legs: set[str] | None = None,
    ) -> list[Order]:
        """Stored orders, oldest first, optionally filtered by state(s), mode, broker, symbol(s) and
        leg(s) (`OrderLeg` values)."""
        q = select(orders_t)
        if state is not None:
            q = q.where(orders_t.c.state.in_([s.value for s in state]))
        if symbols is not None:
            q = q.where(orders_t.c.symbol.in_(sorted(symbols)))
        if legs is not None:
            q = q.where(orders_t.c.leg.in_(sorted(legs)))
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
    ) -> tuple[dict[str, list[OrderTransition]], dict[str, list[tuple[Fill, int]]]]:
        history: dict[str, list[OrderTransition]] = defaultdict(list)
        fills: dict[str, list[tuple[Fill, int]]] = defaultdict(list)
        # Chunked so the IN list stays under SQLite's bound-parameter limit.
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for e in conn.execute(
                select(events_t).where(events_t.c.client_order_id.in_(chunk)).order_by(events_t.c.seq)
            ).mappings():
                history[e["client_order_id"]].append(
                    OrderTransition(
                        OrderState(e["from_state"]),
                        OrderState(e["to_state"]),
                        e["ts"],
                        e["reason"],
                        bool(e["from_reconciliation"]),
                    )
                )
            for f in conn.execute(
                select(fills_t)
                .where(fills_t.c.client_order_id.in_(chunk))
                .order_by(fills_t.c.ts, fills_t.c.fill_id)
            ).mappings():
                fills[f["client_order_id"]].append((_fill_from_row(f), int(f["revision"])))
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
