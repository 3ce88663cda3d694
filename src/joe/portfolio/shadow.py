"""`ShadowPortfolio`: everything as live except that nothing is transmitted.

Per signal it does what `LivePortfolio` does up to the send — the broker's instrument rules, the
bracket on their increments (`joe.portfolio.intents`), the account, and an IBKR what-if (margin
impact, `ExecutionClient.what_if` where the adapter has it) — then, instead of sending, hands the
signal to a paper book at the live quote's mid, which fills it with the paper cost model (half the
spread plus slippage, and the commission). Each would-be order is audited as `shadow.intent`.
The execution client is used only for reads: `submit`, `modify` and `cancel` are never called
(a test asserts the simulators' request logs hold no order-placing request).

With a `trading_state`, each signal first asks it, as `LivePortfolio` does: once trading leaves
ACTIVE during the run (the broker's circuit breaker tripped on its wire trouble, a kill), the rest
are refused with the same reason live gives, audited as ``shadow.entry_refused`` — shadow shows what
live would have halted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.brokers.base import BrokerError, ExecutionClient, MarketData
from joe.core.events import AuditSink
from joe.core.models import AccountInfo, Direction, Position, Signal
from joe.core.order import Order
from joe.portfolio.base import ExitReport, PortfolioManager, SignalOutcome, TrackRecordSummary
from joe.portfolio.exits import PriceBar
from joe.portfolio.intents import NotTradable, bracket_for
from joe.portfolio.paper import PaperPortfolio

if TYPE_CHECKING:
    from joe.safety.trading_state import TradingStateStore


@dataclass(frozen=True, slots=True)
class ShadowIntent:
    """What shadow would have sent for one signal, and what the margin check said."""

    signal_id: str
    symbol: str
    side: str
    quantity: Decimal
    stop: Decimal | None
    target: Decimal | None
    live_price: Decimal | None
    what_if: dict[str, str] | None = None


class ShadowPortfolio(PortfolioManager):
    """Live reads, paper fills. `book` is the shadow's own paper book (not the paper track record)."""

    mode = "shadow"

    def __init__(
        self,
        client: ExecutionClient,
        market: MarketData,
        book: PaperPortfolio,
        audit: AuditSink,
        trading_state: TradingStateStore | None = None,
    ) -> None:
        self.client = client
        self.market = market
        self.book = book
        self.audit = audit
        self.trading_state = trading_state
        self.intents: list[ShadowIntent] = []

    async def submit(self, signals: Sequence[Signal], as_of: datetime) -> list[SignalOutcome]:
        out: list[SignalOutcome] = []
        for s in signals:
            halted = self._entries_halted()
            if halted is not None:
                self.audit.record(
                    "shadow.entry_refused", {"symbol": s.symbol, "reason": halted}, signal_id=s.signal_id
                )
                out.append(SignalOutcome(s.signal_id, s.symbol, "refused", f"entries refused: {halted}"))
                continue
            out.append(await self._one(s, as_of))
        return out

    def _entries_halted(self) -> str | None:
        """Why entries stopped (read before each signal); None while they are allowed."""
        if self.trading_state is None:
            return None
        rec = self.trading_state.current()
        if rec.state.allows_entries():
            return None
        return f"trading is {rec.state.value} (by {rec.by}: {rec.reason})"

    async def _one(self, s: Signal, as_of: datetime) -> SignalOutcome:
        try:
            rules = await self.client.instrument_rules(s.symbol)
            legs = bracket_for(s, rules)
        except (NotTradable, BrokerError) as exc:
            return SignalOutcome(s.signal_id, s.symbol, "skipped", str(exc))
        price = await self._live_price(s)
        what_if = await self._what_if(legs[0])
        entry = legs[0]
        intent = ShadowIntent(
            s.signal_id,
            s.symbol,
            entry.side.value,
            entry.quantity,
            entry.stop_loss,
            entry.take_profit,
            price,
            what_if,
        )
        self.intents.append(intent)
        self.audit.record(
            "shadow.intent",
            {
                "symbol": s.symbol,
                "side": entry.side.value,
                "quantity": str(entry.quantity),
                "stop": str(entry.stop_loss),
                "target": str(entry.take_profit),
                "live_price": None if price is None else str(price),
                "what_if": what_if,
                "transmitted": False,
            },
            signal_id=s.signal_id,
            client_order_id=entry.client_order_id,
        )
        if price is None:
            return SignalOutcome(s.signal_id, s.symbol, "skipped", "no live quote: nothing to fill at")
        try:
            at_live = replace(s, entry=price, quantity=entry.quantity)
        except ValueError as exc:  # the live price is already beyond the stop or the target
            return SignalOutcome(s.signal_id, s.symbol, "skipped", f"live price {price}: {exc}")
        outcomes = await self.book.submit([at_live], as_of)
        return outcomes[0]

    async def _live_price(self, s: Signal) -> Decimal | None:
        try:
            quotes = await self.market.quotes([s.symbol])
        except Exception:
            return None
        q = quotes.get(s.symbol)
        if q is None:
            return None
        # The mid: the paper cost model adds the half-spread and slippage itself.
        px = q.mid if q.bid > 0 and q.ask > 0 else (q.ask if s.direction is Direction.LONG else q.bid)
        return Decimal(str(px)) if px is not None and px > 0 else None

    async def _what_if(self, entry: Any) -> dict[str, str] | None:
        what_if = getattr(self.client, "what_if", None)
        if what_if is None:
            return None
        try:
            r = await what_if(entry)
        except Exception as exc:  # a margin query failing must not look like a pass
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {
            "init_margin_change": str(r.init_margin_change),
            "maint_margin_change": str(r.maint_margin_change),
            "warning": r.warning,
        }

    async def on_prices(self, bars: Mapping[str, PriceBar], ts: datetime) -> ExitReport:
        return await self.book.on_prices(bars, ts)

    async def positions(self) -> list[Position]:
        return await self.book.positions()

    async def orders(self) -> list[Order]:
        return await self.book.orders()

    async def account(self) -> AccountInfo:
        """The broker's account (shadow sizes and checks risk on the live account)."""
        return await self.client.account()

    async def track_record(self, now: datetime | None = None) -> TrackRecordSummary:
        return await self.book.track_record(now)
