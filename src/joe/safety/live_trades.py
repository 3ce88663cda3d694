"""Closed live trades for the protections, from the `OrderManager`'s record (orders and fills).

The protections (`joe.safety.protections`) judge closed trades. A paper book records them as
position rows (`Store.closed_positions`); a live account's trades exist only as Joe's orders and
the broker's fills, which the `OrderManager` keeps in the store. One signal is one trade: its entry's
fills open it, the fills of its stop, target and exits close it; it is closed once they net to zero.
The leg whose fill closed it names the exit (``stop`` for the protective stop, so a broker-side
stop-out counts for the stop-loss guard and the cooldown).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from joe.core.models import Fill, OrderLeg, Side
from joe.core.order import Order
from joe.safety.protections import ClosedTrade
from joe.store import Store

_REASON = {OrderLeg.STOP_LOSS: "stop", OrderLeg.TAKE_PROFIT: "target", OrderLeg.EXIT: "exit"}


def live_closed_trades(store: Store, mode: str, since: datetime | None = None) -> list[ClosedTrade]:
    """The trades of `mode` ("live") closed at or after `since`, oldest first. PnL in the instrument's
    currency, after commissions; notional = entry quantity × average entry price."""
    orders = store.orders(mode=mode)
    fills: dict[str, list[Fill]] = defaultdict(list)
    for f in store.fills(mode=mode):
        fills[f.client_order_id].append(f)
    by_signal: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        by_signal[o.intent.signal_id].append(o)
    out: list[ClosedTrade] = []
    for legs in by_signal.values():
        trade = _closed(legs, fills)
        if trade is not None and (since is None or trade.closed_at >= since):
            out.append(trade)
    return sorted(out, key=lambda t: t.closed_at)


def _closed(legs: list[Order], fills: dict[str, list[Fill]]) -> ClosedTrade | None:
    entry = next((o for o in legs if o.intent.leg is OrderLeg.ENTRY), None)
    if entry is None or not fills.get(entry.client_order_id):
        return None
    opening = fills[entry.client_order_id]
    closing = [(f, o.intent.leg) for o in legs if o is not entry for f in fills.get(o.client_order_id, [])]
    if not closing:
        return None
    bought = sum((f.quantity for f in opening), Decimal(0))
    sold = sum((f.quantity for f, _ in closing), Decimal(0))
    if bought - sold != 0:
        return None  # still open (or closed elsewhere: not a trade Joe can judge)
    cash = Decimal(0)
    for f in [*opening, *(f for f, _ in closing)]:
        cash += (-1 if f.side is Side.BUY else 1) * f.quantity * f.price - f.commission
    entry_price = sum((f.quantity * f.price for f in opening), Decimal(0)) / bought
    last, leg = max(closing, key=lambda c: c[0].ts)
    return ClosedTrade(entry.intent.symbol, last.ts, cash, bought * entry_price, _REASON.get(leg, leg.value))
