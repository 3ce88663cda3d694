"""How the `OrderManager` applies a broker's word about an order: a `Plan` (`joe.execution.reconcile_rules`,
from a status report or a notice) carried out on the `Order` — its levels and size as the broker has them,
its broker id, its state transition — saved, audited and alerted; and a protective leg's level the account
owner moved at the broker (not asked by Joe) reported as an outside amend. A mixin of `OrderManager`,
split out by concept; it changes an order only through the `Order`'s own methods and the manager's `book`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.core.models import OrderLeg, OrderType
from joe.core.order import Order
from joe.execution.book import OrderBook
from joe.execution.events import AlertKind
from joe.execution.journal import ExecutionJournal
from joe.execution.reconcile_rules import Plan

__all__ = ["PlanApply"]

_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)


class PlanApply:
    """`_apply(order, plan)` for `OrderManager` (which provides the state)."""

    book: OrderBook
    journal: ExecutionJournal
    clock: Callable[[], datetime]
    _levels_asked: dict[str, set[tuple[str, Decimal]]]  # price levels Joe asked, by order

    if TYPE_CHECKING:  # provided by `OrderManager` / `BrokerQueries`

        async def ask(self, o: Order) -> bool: ...

    async def _apply(self, o: Order, plan: Plan) -> None:
        outside = self._outside_levels(o, plan)
        if plan.changes_anything:
            if plan.quantity is not None or plan.limit_price is not None or plan.stop_price is not None:
                o.apply_broker_values(
                    quantity=plan.quantity, limit_price=plan.limit_price, stop_price=plan.stop_price
                )
            if plan.broker_order_id is not None:
                o.broker_order_id = plan.broker_order_id
            before = o.state
            if plan.to_state is not None:
                o.transition(
                    plan.to_state,
                    plan.reason,
                    ts=self.clock(),
                    correction=plan.correction,
                    from_reconciliation=plan.from_reconciliation,
                )
            self.book.save(o, durable=False)  # the broker's word: read again on restart
            await self.journal.order_event(
                "order.state" if plan.to_state else "order.amended",
                {
                    "from": before.value,
                    "to": o.state.value,
                    "reason": plan.reason,
                    "from_reconciliation": plan.from_reconciliation,
                    "quantity": str(o.quantity),
                    "limit_price": _text(o.intent.limit_price),
                    "stop_price": _text(o.intent.stop_price),
                },
                o,
            )
        for a in plan.alerts:
            await self.journal.alert(AlertKind.BROKER_CORRECTION, a, o)
        if plan.ask_broker:
            await self.ask(o)
        if outside:
            text = ", ".join(f"{k} {was} -> {now}" for k, was, now in outside)
            await self.journal.order_event(
                "order.changed_outside", {k: {"from": _text(a), "to": str(b)} for k, a, b in outside}, o
            )
            await self.journal.alert(
                AlertKind.OUTSIDE_AMEND,
                f"{o.intent.leg.value} {o.client_order_id} ({o.intent.symbol}) changed at the broker, not by "
                f"Joe: {text}; Joe follows the broker's values",
                o,
            )

    def _outside_levels(self, o: Order, plan: Plan) -> list[tuple[str, Decimal | None, Decimal]]:
        """The price levels of a protective leg that `plan` changes and Joe never asked for (the account
        owner moved Joe's stop or target in TWS / on the platform): (field, Joe's, the broker's). A
        level Joe asked for is consumed when the broker confirms it. The broker moves no other level of
        a plain stop or target by itself (a trailing stop's does: not checked)."""
        if o.intent.leg not in _CHILD_LEGS or o.intent.order_type is OrderType.TRAILING_STOP:
            return []
        asked = self._levels_asked.get(o.client_order_id, set())
        out: list[tuple[str, Decimal | None, Decimal]] = []
        for field, new, old in (
            ("stop_price", plan.stop_price, o.intent.stop_price),
            ("limit_price", plan.limit_price, o.intent.limit_price),
        ):
            if new is None or new == old:
                continue
            if (field, new) in asked:
                asked.discard((field, new))
            else:
                out.append((field, old, new))
        return out


def _text(v: Decimal | None) -> str | None:
    return None if v is None else str(v)
