"""`LivePortfolio`: approved signals → broker-side brackets through the `OrderManager`.

- `start()` reconciles before anything trades, through the `Reconciler` (`joe.execution.reconciler`:
  open orders, executions since the persistent checkpoint, lost and external orders, positions per
  instrument). Anything it cannot explain refuses new entries for the run (said in the outcomes,
  audited as `live.entries_refused`; with a `trading_state` the Reconciler also moves it to HALTED,
  as the daemon does). Exits stay allowed.
- `submit()` turns each signal into a bracket on the instrument's increments (`joe.portfolio.intents`),
  capped by the small-size rollout on a real-money account (`on_entry` tags each entry with the kind
  of account it goes to, so only real-money trades advance the rollout), and sends it through the
  `OrderManager` (write-ahead, idempotent by client order id: a rerun never sends a second bracket).
- Positions opened by earlier runs are managed by the `OrderManager`'s protection check during the
  reconciliation: a position whose stop is missing is reported to `on_unprotected` (the safety layer's
  lost-protection reaction places a new reduce-only stop; `start()` waits for it before the run goes
  on). `exit()` sends a strategy exit reduce-only.
- Positions, orders and the account are read from the broker (positions, account) and the store
  (orders, after the reconciliation).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.brokers.base import BrokerError, OrderOutcomeUnknown
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.ids import client_order_id
from joe.core.models import AccountInfo, Fill, OrderLeg, Position, Side, Signal
from joe.core.order import Order, OrderState
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import Reconciler
from joe.portfolio.base import ExitReport, PortfolioManager, SignalOutcome, TrackRecordSummary
from joe.portfolio.exits import PriceBar
from joe.portfolio.intents import NotTradable, SizeCap, bracket_for
from joe.portfolio.strategy_exits import StrategyExit
from joe.store import Store

if TYPE_CHECKING:
    from joe.safety.trading_state import TradingStateStore

MODE = "live"
# An entry sent whose fate the broker has not confirmed: it may be working or even filled there, so
# it is never reported "rejected" (an operator would place it again by hand); the OrderManager never
# resends it and the next reconciliation settles it (hostile review 2026-12-02).
UNACKNOWLEDGED = "entry sent, not acknowledged by the broker: may be working or filled there; never resent"


@dataclass
class ReconcileSummary:
    """What the start-up reconciliation found: explained or not, and each finding in words."""

    explained: bool
    findings: list[str] = field(default_factory=list)
    broker_positions: dict[str, Decimal] = field(default_factory=dict)
    joe_positions: dict[str, Decimal] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # explained findings (e.g. an external position)


def net_filled(orders: Sequence[Order]) -> dict[str, Decimal]:
    """Joe's net filled quantity per symbol (signed, > 0 long) from its own orders."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    for o in orders:
        q = o.filled_quantity
        if q:
            net[o.intent.symbol] += q if o.intent.side is Side.BUY else -q
    return {s: q for s, q in net.items() if q != 0}


def _child_links(orders: Sequence[Order]) -> list[tuple[str, str, OrderLeg]]:
    """(leg id, entry id, leg) of every stop/target Joe placed, oldest first: a bracket's legs, and a
    stop re-placed alone for a held position (the lost-protection reaction: no parent; it belongs to
    its signal's entry, and being later it takes the leg over from the stop it replaces)."""
    out = []
    for o in orders:
        if o.parent_client_order_id:
            out.append((o.client_order_id, o.parent_client_order_id, o.intent.leg))
        elif o.intent.leg is OrderLeg.STOP_LOSS and o.intent.reduce_only:
            entry = client_order_id(o.intent.signal_id, OrderLeg.ENTRY.value)
            out.append((o.client_order_id, entry, o.intent.leg))
    return out


class LivePortfolio(PortfolioManager):
    """The live trader over one broker's `OrderManager`. Call `start()` before `submit()`."""

    mode = MODE

    def __init__(
        self,
        om: OrderManager,
        store: Store,
        audit: AuditSink,
        *,
        size_cap: Callable[[], SizeCap | None] = lambda: None,
        on_entry: Callable[[str], None] = lambda coid: None,
        trading_state: TradingStateStore | None = None,
        fill_wait_s: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.om = om
        self.client = om.client
        self.store = store
        self.audit = audit
        self.size_cap = size_cap
        self.on_entry = on_entry  # told each entry's client order id before it is sent (rollout tag)
        self.trading_state = trading_state
        self.fill_wait_s = fill_wait_s
        self.clock = clock
        self.started_at = clock()
        self.refused: str | None = "not started: reconcile with the broker first"
        self.reconciled: ReconcileSummary | None = None
        self.sent: list[str] = []  # entry client order ids sent (or adopted) by this run
        self._known_fills: set[str] = set()

    # ------------------------------------------------------------------ reconciliation
    async def start(self) -> ReconcileSummary:
        """Reconcile with the broker; entries stay refused unless everything is explained."""
        self.started_at = self.clock()
        self._known_fills = {f.fill_id for f in self.store.fills(mode=MODE)}
        findings: list[str] = []
        notes: list[str] = []
        remember = getattr(self.client, "remember_children", None)
        if remember is not None:  # brackets earlier runs sent: their legs' fills need an owner
            remember(_child_links(self.store.orders(mode=MODE, broker=self.om.broker)))
        try:
            report = await Reconciler(self.om, trading_state=self.trading_state).start()
            await self._protection_settled()
            broker: dict[str, Decimal] = defaultdict(Decimal)
            for p in await self.client.positions():
                broker[p.symbol] += p.quantity
            broker_pos = {s: q for s, q in broker.items() if q != 0}
        except BrokerError as exc:
            summary = ReconcileSummary(False, [f"reconciliation failed: {type(exc).__name__}: {exc}"])
            return self._conclude(summary)
        joe = net_filled(self.store.orders(mode=MODE, broker=self.om.broker))
        for f in report.findings:
            text = f"{f.kind.value} {f.instrument}: {f.action}"
            (findings if not f.explained else notes).append(text)
        if not report.explained and not findings:
            findings.append("the reconciliation did not explain the account (see the audit log)")
        summary = ReconcileSummary(report.explained and not findings, findings, broker_pos, joe, notes)
        return self._conclude(summary)

    async def _protection_settled(self) -> None:
        """Wait for the lost-protection reaction to a position the reconciliation found without its stop
        (`joe.safety.om_protection.ProtectionReaction`: it acts once the manager accepts intents again):
        the stop is re-placed (else the position exited, else trading HALTED) before this run trades,
        reports, and closes the connection its orders depend on. Bounded by the reaction's deadline."""
        reaction = self.om.journal.on_unprotected
        settle = getattr(reaction, "settle", None)
        if settle is not None:
            await settle(float(getattr(reaction, "deadline_s", 30.0)) + 35.0)

    def _conclude(self, summary: ReconcileSummary) -> ReconcileSummary:
        self.reconciled = summary
        self.refused = None if summary.explained else "; ".join(summary.findings)
        self.audit.record(
            "live.reconciled",
            {
                "broker": self.om.broker,
                "explained": summary.explained,
                "findings": summary.findings,
                "broker_positions": {k: str(v) for k, v in summary.broker_positions.items()},
            },
        )
        if not summary.explained:
            self.audit.record("live.entries_refused", {"broker": self.om.broker, "reason": self.refused})
        return summary

    # ------------------------------------------------------------------ entries and exits
    async def submit(self, signals: Sequence[Signal], as_of: datetime) -> list[SignalOutcome]:
        """One bracket per signal through the `OrderManager`; refused for all when not reconciled."""
        out: list[SignalOutcome] = []
        for s in signals:
            halted = self._entries_halted()
            if self.refused is not None or halted is not None:
                why = self.refused if self.refused is not None else halted
                out.append(SignalOutcome(s.signal_id, s.symbol, "refused", f"entries refused: {why}"))
                continue
            out.append(await self._submit_one(s))
        return out

    def _entries_halted(self) -> str | None:
        """Why entries stopped during this run (the circuit breaker tripped on the last outcomes, a
        kill), from the trading state; None while entries are allowed."""
        if self.trading_state is None:
            return None
        rec = self.trading_state.current()
        if rec.state.allows_entries():
            return None
        return f"trading is {rec.state.value} (by {rec.by}: {rec.reason})"

    async def _submit_one(self, s: Signal) -> SignalOutcome:
        try:
            rules = await self.client.instrument_rules(s.symbol)
            intents = bracket_for(s, rules, self.size_cap())
        except (NotTradable, BrokerError) as exc:
            return SignalOutcome(s.signal_id, s.symbol, "skipped", str(exc))
        entry_id = intents[0].client_order_id
        self.on_entry(entry_id)
        try:
            await self.om.submit(intents)
        except OrderOutcomeUnknown as exc:  # it may be at the broker, even filled: never "rejected"
            self.sent.append(entry_id)
            why = f"{UNACKNOWLEDGED}: {exc}"
            return SignalOutcome(s.signal_id, s.symbol, "sent", why, client_order_id=entry_id)
        except BrokerError as exc:  # fail closed: say what happened, send nothing more for it
            return SignalOutcome(
                s.signal_id, s.symbol, "rejected", f"{type(exc).__name__}: {exc}", client_order_id=entry_id
            )
        self.sent.append(entry_id)
        fill = await self._entry_fill(entry_id)
        if fill is not None:
            return SignalOutcome(s.signal_id, s.symbol, "opened", "", client_order_id=entry_id, fill=fill)
        o = self.om.order(entry_id)
        if o is not None and o.state in (OrderState.REJECTED, OrderState.CANCELLED, OrderState.EXPIRED):
            why = f"{o.state.value} by {self.om.broker}: {o.reject_reason or 'no reason given'}"
            return SignalOutcome(s.signal_id, s.symbol, "rejected", why, client_order_id=entry_id)
        if o is not None and o.state.is_working:
            why = "entry working at the broker"
        else:  # not acknowledged (SUBMITTING, UNKNOWN): the broker has not said it holds it
            why = f"{UNACKNOWLEDGED} (state {o.state.value if o is not None else 'not stored'})"
        return SignalOutcome(s.signal_id, s.symbol, "sent", why, client_order_id=entry_id)

    async def _entry_fill(self, coid: str) -> Fill | None:
        """Wait (bounded) for the entry's fill to be booked; None if it is still working."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.fill_wait_s
        while True:
            o = self.om.order(coid)
            if o is not None and o.state is OrderState.FILLED:
                fills = self.store.fills(client_order_id=coid)
                if fills:
                    return fills[-1]
            if o is not None and o.state.is_terminal and o.state is not OrderState.FILLED:
                return None
            if loop.time() >= end:
                return None
            await asyncio.sleep(0.05)

    async def strategy_exit(self, exits: Sequence[StrategyExit]) -> list[dict[str, str]]:
        """Send each strategy exit reduce-only through the `OrderManager` (once: an exit already
        working is returned, a filled one leaves nothing to exit); allowed while entries are refused.
        Returns one row per exit for the report (symbol, reason, order id, quantity, state or error)."""
        rows: list[dict[str, str]] = []
        for x in exits:
            row = {"symbol": x.symbol, "signal_id": x.signal_id, "reason": x.reason}
            try:
                order = await self.om.exit(x.signal_id)
            except BrokerError as exc:  # fail closed: said and audited, never retried blindly here
                row |= {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
            else:
                if order is None:
                    row |= {"state": "nothing to exit"}
                else:
                    done = await self._settled(order.client_order_id)
                    row |= {
                        "client_order_id": order.client_order_id,
                        "quantity": str(order.quantity),
                        "state": (done or order).state.value,
                    }
            self.audit.record("live.strategy_exit", {"broker": self.om.broker} | row, signal_id=x.signal_id)
            rows.append(row)
        return rows

    async def _settled(self, coid: str) -> Order | None:
        """The order once terminal (bounded wait, as for entries), else its current copy."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.fill_wait_s
        while True:
            o = self.om.order(coid)
            if o is None or o.state.is_terminal or loop.time() >= end:
                return o
            await asyncio.sleep(0.05)

    async def exit(self, signal_id: str) -> Order | None:
        """A strategy exit: reduce-only, capped at the live position (`OrderManager.exit`)."""
        return await self.om.exit(signal_id)

    async def on_prices(self, bars: Mapping[str, PriceBar], ts: datetime) -> ExitReport:
        """Stops and targets are broker-side: nothing to evaluate here."""
        return ExitReport()

    # ------------------------------------------------------------------ views
    async def positions(self) -> list[Position]:
        by_signal = {
            o.intent.symbol: o.intent
            for o in self.store.orders(mode=MODE, broker=self.om.broker)
            if o.intent.leg is OrderLeg.ENTRY and o.filled_quantity > 0
        }
        out = []
        for p in await self.client.positions():
            if p.quantity == 0:
                continue
            intent = by_signal.get(p.symbol)
            out.append(
                Position(
                    p.symbol,
                    p.quantity,
                    p.avg_price,
                    stop_loss=p.stop_level or (intent.stop_loss if intent else None),
                    take_profit=p.limit_level or (intent.take_profit if intent else None),
                    broker_position_id=p.broker_position_id,
                    signal_id=intent.signal_id if intent else None,
                )
            )
        return out

    async def orders(self) -> list[Order]:
        return self.store.orders(mode=MODE, broker=self.om.broker)

    def run_fills(self) -> list[Fill]:
        """Live fills booked since `start()` (this run's, including fills the reconciliation found,
        such as a stop that filled at the broker between runs), oldest first."""
        return [f for f in self.store.fills(mode=MODE) if f.fill_id not in self._known_fills]

    async def account(self) -> AccountInfo:
        return await self.client.account()

    async def track_record(self, now: datetime | None = None) -> TrackRecordSummary:
        """Live trading has no paper track record; the live gate reads the paper book's."""
        return TrackRecordSummary(0, 0, 0.0, Decimal(0))
