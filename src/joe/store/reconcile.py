"""The Reconciler's persistent state: its checkpoint per account and the items it recorded
(external orders, positions and fills; how often one of Joe's orders was missing at the broker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, and_, delete, select

from joe.core.clock import ensure_utc, utcnow
from joe.store._base import StoreBase, check_mode, upsert
from joe.store.schema import fills as fills_t
from joe.store.schema import reconcile_checkpoints as checkpoints_t
from joe.store.schema import reconcile_items as items_t


@dataclass(frozen=True, slots=True)
class ReconcileItem:
    """One recorded item. `kind`: "external_order" | "external_position" | "external_fill" | "miss" |
    "outside_change" (an execution Joe did not place that closed part of a signal's position,
    `joe.execution.outside`; `detail` names the signal);
    `ref`: the broker's id (order id, deal id or symbol, execution id, Joe's client order id for a
    miss); `quantity` signed for positions; `count` how many passes saw it (misses: in a row)."""

    broker: str
    mode: str
    kind: str
    ref: str
    symbol: str
    quantity: Decimal
    count: int
    detail: dict[str, Any] | None
    first_seen: datetime
    updated_at: datetime


def _item(r: RowMapping) -> ReconcileItem:
    return ReconcileItem(**{f: r[f] for f in ReconcileItem.__dataclass_fields__})


class ReconcileRepository(StoreBase):
    """Checkpoints and recorded items of the `joe.execution.reconciler.Reconciler`."""

    def reconcile_checkpoint(self, broker: str, mode: str) -> datetime | None:
        """The UTC time up to which executions at `broker` were reconciled, or None (never)."""
        with self._read() as conn:
            row = conn.execute(
                select(checkpoints_t.c.checkpoint).where(
                    and_(checkpoints_t.c.broker == broker, checkpoints_t.c.mode == check_mode(mode))
                )
            ).first()
        return None if row is None else row[0]

    def set_reconcile_checkpoint(self, broker: str, mode: str, checkpoint: datetime) -> None:
        """Move the checkpoint (never backwards: an older value is ignored)."""
        current = self.reconcile_checkpoint(broker, mode)
        ts = ensure_utc(checkpoint)
        if current is not None and ts <= current:
            return
        with self._write() as conn:
            upsert(
                conn,
                checkpoints_t,
                {"broker": broker, "mode": check_mode(mode), "checkpoint": ts, "updated_at": utcnow()},
                ["broker", "mode"],
            )

    def net_filled(self, broker: str, mode: str) -> dict[str, Decimal]:
        """Joe's net filled quantity per symbol at one account (signed, > 0 long), from its stored
        fills (each execution once: a correction replaces its row)."""
        q = select(fills_t.c.symbol, fills_t.c.side, fills_t.c.quantity).where(
            and_(fills_t.c.broker == broker, fills_t.c.mode == check_mode(mode))
        )
        out: dict[str, Decimal] = {}
        with self._read() as conn:
            for symbol, side, qty in conn.execute(q):
                sign = 1 if str(side).upper() == "BUY" else -1
                out[symbol] = out.get(symbol, Decimal(0)) + sign * Decimal(qty)
        return out

    def reconcile_item(self, broker: str, mode: str, kind: str, ref: str) -> ReconcileItem | None:
        with self._read() as conn:
            row = (
                conn.execute(
                    select(items_t).where(
                        and_(
                            items_t.c.broker == broker,
                            items_t.c.mode == check_mode(mode),
                            items_t.c.kind == kind,
                            items_t.c.ref == ref,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _item(row)

    def reconcile_items(self, broker: str, mode: str, kind: str | None = None) -> list[ReconcileItem]:
        """Every recorded item of one account (optionally of one kind), oldest first."""
        q = select(items_t).where(and_(items_t.c.broker == broker, items_t.c.mode == check_mode(mode)))
        if kind is not None:
            q = q.where(items_t.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(q.order_by(items_t.c.first_seen, items_t.c.ref)).mappings().all()
        return [_item(r) for r in rows]

    def put_reconcile_item(
        self,
        broker: str,
        mode: str,
        kind: str,
        ref: str,
        *,
        symbol: str,
        quantity: Decimal,
        detail: dict[str, Any] | None = None,
        bump: bool = True,
    ) -> ReconcileItem:
        """Record (or update) an item; `bump` adds one to its count. Returns the stored item."""
        old = self.reconcile_item(broker, mode, kind, ref)
        now = utcnow()
        values = {
            "broker": broker,
            "mode": check_mode(mode),
            "kind": kind,
            "ref": ref,
            "symbol": symbol,
            "quantity": quantity,
            "count": (old.count if old else 0) + (1 if bump else 0),
            "detail": detail,
            "first_seen": old.first_seen if old else now,
            "updated_at": now,
        }
        with self._write() as conn:
            upsert(conn, items_t, values, ["broker", "mode", "kind", "ref"])
        item = self.reconcile_item(broker, mode, kind, ref)
        assert item is not None
        return item

    def drop_reconcile_item(self, broker: str, mode: str, kind: str, ref: str) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    delete(items_t).where(
                        and_(
                            items_t.c.broker == broker,
                            items_t.c.mode == check_mode(mode),
                            items_t.c.kind == kind,
                            items_t.c.ref == ref,
                        )
                    )
                ).rowcount
                > 0
            )
