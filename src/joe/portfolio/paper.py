"""`PaperPortfolio`: simulated trading persisted in the store, audited like live trading.

Every order goes through the same `Order` state machine as live orders and is written to the
store before the next step (write-ahead); the fill, the position and the cash change of one
trade are committed in one transaction, so a crash leaves either all of a trade or none of it.
The ledger in memory is rebuilt from the store on start, so the store is the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.grid import floor_size, on_grid, size_refusal
from joe.core.ids import client_order_id
from joe.core.models import AccountInfo, Fill, OrderIntent, OrderLeg, OrderType, Position, Side, Signal
from joe.core.order import Order, OrderState
from joe.core.reports import InstrumentRules
from joe.portfolio.base import ExitReport, PortfolioManager, SignalOutcome, TrackRecordSummary
from joe.portfolio.costs import CostModel
from joe.portfolio.exits import PriceBar, check_exit, ratchet
from joe.portfolio.ledger import LedgerError, PaperLedger, PaperPosition
from joe.portfolio.replay import Mark, bars_between, last_closes

if TYPE_CHECKING:
    import pandas as pd

    from joe.portfolio.strategy_exits import StrategyExit
    from joe.store import Store

MODE = "paper"
LAST_BAR_KEY = "paper.last_bar_ts"
# position id -> [price, bar time] of its last mark, so a reload values a position where it was left.
MARKS_KEY = "paper.marks"
# The exit reason of a position closed because its instrument stopped trading (`close_data_ended`).
DATA_ENDED = "data ended"


class PaperPortfolio(PortfolioManager):
    """The paper trader. Use `PaperPortfolio.load(store, audit, config)`."""

    mode = MODE

    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        config: ExecutionConfig,
        ledger: PaperLedger,
        *,
        broker: str = "sim",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.audit = audit
        self.config = config
        self.ledger = ledger
        self.broker = broker
        self.costs = CostModel.from_config(config.paper)
        self._clock = clock
        self.marks: dict[str, Mark] = {}
        # Fills booked by this object (one run): what "N fill(s) this run" counts; of them, the
        # positions opened and closed (a failed run's message says both, `RunState.done_so_far`).
        self.run_fills: list[Fill] = []
        self.run_opened = 0
        self.run_closed = 0
        # symbol -> price tick / size rules, for instruments whose broker states them (`set_rules`).
        self.ticks: dict[str, Decimal] = {}
        self.sizes: dict[str, InstrumentRules] = {}

    def set_ticks(self, ticks: Mapping[str, Decimal]) -> None:
        """Price grids of instruments with known rules (e.g. Capital.com `tickSize`): paper fills,
        stops, targets, trail distances and marks of those symbols are put on the grid as the broker
        would require (fills never better than the cost model, stops never tighter). Others are
        unchanged."""
        self.ticks = {sym: t for sym, t in ticks.items() if t > 0}

    def set_rules(self, rules: Mapping[str, InstrumentRules]) -> None:
        """The broker's dealing rules (Capital.com `dealingRules`, spec §6.4): prices on `tick_size`
        as `set_ticks`, and sizes floored to `size_increment`, refused below `min_size`."""
        self.set_ticks({sym: r.tick_size for sym, r in rules.items()})
        self.sizes = {sym: r for sym, r in rules.items() if r.size_increment > 0 or r.min_size > 0}

    def _grid(self, symbol: str, price: Decimal, rounding: str) -> Decimal:
        tick = self.ticks.get(symbol)
        return price if tick is None else on_grid(price, tick, rounding)

    @classmethod
    def load(
        cls,
        store: Store,
        audit: AuditSink,
        config: ExecutionConfig,
        *,
        broker: str = "sim",
        clock: Callable[[], datetime] = utcnow,
    ) -> PaperPortfolio:
        """Rebuild the ledger from the store (creating the paper account on first use)."""
        acct = store.get_paper_account()
        if acct is None:
            start = config.paper.starting_cash
            store.save_paper_account(
                cash=start, starting_cash=start, realized_pnl=Decimal(0), currency=config.paper.currency
            )
            audit.record("paper.account_created", {"starting_cash": start, "currency": config.paper.currency})
            acct = store.get_paper_account()
            assert acct is not None
        ledger = PaperLedger(
            starting_cash=acct.starting_cash,
            cash=acct.cash,
            allow_margin=config.paper.allow_margin,
            realized_pnl=acct.realized_pnl,
            max_leverage=config.paper.max_leverage,
        )
        saved = store.get_state(MARKS_KEY) or {}
        marks: dict[str, Mark] = {}
        for row in store.open_positions(MODE, broker):
            if str(row.id) in saved:
                price, ts = saved[str(row.id)]
                marks[str(row.id)] = Mark(Decimal(price), datetime.fromisoformat(ts))
            ledger.positions[str(row.id)] = PaperPosition(
                position_id=str(row.id),
                symbol=row.symbol,
                quantity=row.quantity,
                entry_price=row.avg_price,
                entry_commission=row.fees,
                opened_at=row.opened_at,
                signal_id=row.signal_id or "",
                stop_loss=row.stop_loss,
                take_profit=row.take_profit,
                trailing_distance=row.trailing_distance,
                best_price=row.high_water,
                mark=marks[str(row.id)].price if str(row.id) in marks else row.avg_price,
            )
        pf = cls(store, audit, config, ledger, broker=broker, clock=clock)
        pf.marks = marks
        return pf

    def resolve_interrupted(self) -> list[str]:
        """Close out the paper orders a stopped run left half-way; returns their client order ids.

        A paper order is written ahead (NEW, then SUBMITTING for an entry) and then filled, booked
        and saved FILLED in one transaction, so one still NEW or SUBMITTING when a run opens the book
        is an order whose process died (SIGKILL, power loss) or whose booking failed (a full disk)
        between the two: nothing of it was booked and, with no broker, nothing will ever fill it.
        It is REJECTED (audited `order.rejected`, `interrupted: true`) instead of showing as a working
        order forever; its position, if it was an exit, is still open and is settled again by this
        run (`_close` takes the next attempt's id). Call only as the data folder's lock holder, before
        the run trades (`joe.runtime.stages.open_book`)."""
        out: list[str] = []
        stuck = self.store.orders({OrderState.NEW, OrderState.SUBMITTING}, mode=MODE, broker=self.broker)
        for order in stuck:
            reason = "interrupted: the run stopped before its fill was booked; nothing was filled"
            if order.state is OrderState.NEW:
                order.transition(OrderState.SUBMITTING, "paper submit (interrupted)")
            order.transition(OrderState.REJECTED, reason)
            self.store.save_order(order, broker=self.broker, mode=MODE)
            ids = {"client_order_id": order.client_order_id, "signal_id": order.intent.signal_id}
            self.audit.record("order.rejected", {"mode": MODE, "reason": reason, "interrupted": True}, **ids)
            out.append(order.client_order_id)
        return out

    # ------------------------------------------------------------------ entries
    async def submit(self, signals: Sequence[Signal], as_of: datetime) -> list[SignalOutcome]:
        return [self._submit_one(s, as_of) for s in signals]

    def _skip(self, s: Signal, reason: str, action: str = "skipped") -> SignalOutcome:
        self.audit.record("paper.signal_skipped", {"reason": reason, "action": action}, signal_id=s.signal_id)
        return SignalOutcome(s.signal_id, s.symbol, action, reason)

    def _submit_one(self, s: Signal, as_of: datetime) -> SignalOutcome:
        risk = self.config.risk
        if s.symbol in self.ticks:  # the broker's grid: a long's stop down / a short's up (never tighter)
            away = ROUND_FLOOR if s.direction.entry_side is Side.BUY else ROUND_CEILING
            try:
                s = replace(
                    s,
                    stop_loss=self._grid(s.symbol, s.stop_loss, away),
                    take_profit=self._grid(s.symbol, s.take_profit, ROUND_HALF_EVEN),
                    trailing_distance=None
                    if s.trailing_distance is None
                    else self._grid(s.symbol, s.trailing_distance, ROUND_CEILING),
                )
            except ValueError as e:  # the levels collapse onto the entry on the broker's grid
                return self._skip(s, f"levels do not fit the {self.ticks[s.symbol]} price grid: {e}")
        if self.store.position_for_signal(MODE, self.broker, s.signal_id) is not None:
            return SignalOutcome(s.signal_id, s.symbol, "skipped", "already traded this signal")
        coid = client_order_id(s.signal_id, OrderLeg.ENTRY.value)
        existing = self.store.load_order(coid)
        if existing is not None:
            return SignalOutcome(
                s.signal_id, s.symbol, "skipped", f"order {coid} already exists ({existing.state})", coid
            )
        if s.quantity is None or s.quantity <= 0:
            return self._skip(s, "no position size (risk sizing gave 0)")
        rules = self.sizes.get(s.symbol)
        if rules is not None:  # the broker's size grid: floored, never more risk than sized
            refused = size_refusal(s.symbol, s.quantity, rules.size_increment, rules.min_size)
            if refused is not None:
                return self._skip(s, refused)
            s = replace(s, quantity=floor_size(s.quantity, rules.size_increment, rules.min_size))
        assert s.quantity is not None  # checked above; `replace` loses mypy's narrowing
        if len(self.ledger.positions) >= risk.max_positions:
            return self._skip(s, f"max positions reached ({risk.max_positions})")
        on_symbol = sum(1 for p in self.ledger.positions.values() if p.symbol == s.symbol)
        if on_symbol >= risk.max_positions_per_symbol:
            return self._skip(s, f"max positions per symbol reached ({risk.max_positions_per_symbol})")

        side = s.direction.entry_side
        intent = OrderIntent(
            coid,
            s.signal_id,
            OrderLeg.ENTRY,
            s.symbol,
            side,
            s.quantity,
            OrderType.MARKET,
            stop_loss=s.stop_loss,
            take_profit=s.take_profit,
            trailing_distance=s.trailing_distance,
        )
        order = Order(intent)
        ids = {"client_order_id": coid, "signal_id": s.signal_id}
        self.audit.record("order.attempt", _intent_payload(intent, self.mode), **ids)
        self.store.save_order(order, broker=self.broker, mode=MODE)  # write-ahead: NEW
        order.transition(OrderState.SUBMITTING, "paper submit")
        self.store.save_order(order, broker=self.broker, mode=MODE)

        price = self._fill(s.symbol, side, s.entry)
        commission = self.costs.commission(s.quantity, price)
        qty_signed = s.quantity * side.sign
        pos = PaperPosition(
            "pending",
            s.symbol,
            qty_signed,
            price,
            commission,
            as_of,
            s.signal_id,
            s.stop_loss,
            s.take_profit,
            s.trailing_distance,
        )
        try:
            self.ledger.check_open(pos)
        except LedgerError as e:
            order.transition(OrderState.REJECTED, str(e))
            self.store.save_order(order, broker=self.broker, mode=MODE)
            self.audit.record("order.rejected", {"reason": str(e)}, **ids)
            return SignalOutcome(s.signal_id, s.symbol, "rejected", str(e), coid)

        fill = Fill(f"paper-{coid}", coid, s.symbol, side, s.quantity, price, as_of, commission, coid)
        order.broker_order_id = coid
        order.transition(OrderState.ACCEPTED, "paper ack")
        order.apply_fill(fill)
        with self.store.atomic():
            self.store.save_order(order, broker=self.broker, mode=MODE)
            self.store.record_fill(fill, broker=self.broker, mode=MODE)
            row = self.store.open_position(
                mode=MODE,
                broker=self.broker,
                symbol=s.symbol,
                quantity=qty_signed,
                avg_price=price,
                opened_at=as_of,
                signal_id=s.signal_id,
                stop_loss=s.stop_loss,
                take_profit=s.take_profit,
                trailing_distance=s.trailing_distance,
                high_water=price,
                fees=commission,
            )
            self.ledger.open(replace(pos, position_id=str(row.id)))
            self._save_account()
        self.run_fills.append(fill)
        self.run_opened += 1
        self.audit.record("order.ack", {"state": order.state.value}, **ids)
        self.audit.record("order.fill", _fill_payload(fill), **ids)
        self.audit.record(
            "position.opened",
            {"symbol": s.symbol, "quantity": qty_signed, "price": price, "position_id": row.id},
            **ids,
        )
        return SignalOutcome(s.signal_id, s.symbol, "opened", "", coid, fill)

    # -------------------------------------------------------------------- exits
    async def on_prices(self, bars: Mapping[str, PriceBar], ts: datetime) -> ExitReport:
        report = self._apply_bar(bars, ts, persist_levels=True)
        self.store.set_state(LAST_BAR_KEY, ts.isoformat())
        return report

    def _apply_bar(self, bars: Mapping[str, PriceBar], ts: datetime, *, persist_levels: bool) -> ExitReport:
        """Exits, then trail ratchets, for one bar time. Levels are written now or by the caller."""
        report = ExitReport()
        for pid, pos in list(self.ledger.positions.items()):
            bar = bars.get(pos.symbol)
            if bar is None or ts <= pos.opened_at:
                continue
            decision = check_exit(pos, bar)
            if decision is None:
                newpos = ratchet(pos, bar)
                moved = newpos.stop_loss
                if moved is not None and moved != pos.stop_loss and pos.symbol in self.ticks:  # a trail
                    away = ROUND_FLOOR if pos.quantity > 0 else ROUND_CEILING
                    newpos = replace(newpos, stop_loss=self._grid(pos.symbol, moved, away))
                self.ledger.update(newpos)
                if persist_levels:
                    self._persist_levels(pos, newpos)
                continue
            self._close(pos, decision.price, decision.reason, ts)
            report.closed.append((pos.symbol, pid, decision.price, decision.reason))
        return report

    def _persist_levels(self, before: PaperPosition, after: PaperPosition) -> None:
        if after.stop_loss == before.stop_loss and after.best_price == before.best_price:
            return
        self.store.update_position(
            int(after.position_id), stop_loss=after.stop_loss, high_water=after.best_price
        )
        if after.stop_loss != before.stop_loss:
            self.audit.record(
                "position.stop_moved",
                {"from": before.stop_loss, "to": after.stop_loss},
                signal_id=after.signal_id,
            )

    async def settle(self, history: Mapping[str, pd.DataFrame], until: datetime) -> ExitReport:
        """Bring the book up to `until`: every bar after the last processed one, then marks.

        `history` maps each held symbol to its daily OHLC frame (at least from the last processed bar
        on). Each bar is checked in time order (gap through a level → the open), so an exit is booked
        on the day it was touched. The trail's level changes are written once at the end (a crash
        replays from the last processed bar, which is deterministic). Then each position is marked at
        its last known close on or before `until`, and an equity point is recorded at `until`.
        """
        bars = bars_between(history, self.last_bar_ts(), until)
        return self.settle_bars(bars, last_closes(history, until), until)

    def settle_bars(
        self,
        bars: Iterable[tuple[datetime, Mapping[str, PriceBar]]],
        closes: Mapping[str, Mark],
        until: datetime,
    ) -> ExitReport:
        """`settle` from bars already cut to (last processed bar, `until`] and the marks at `until`.

        `bars`: each bar time, oldest first, with the bars of the held symbols that have one; `closes`:
        symbol → its last known close on or before `until`. A backtest builds both straight from its
        arrays (`joe.backtest.precompute`); the rules applied are `settle`'s, in this one place.
        """
        report = ExitReport()
        before = dict(self.ledger.positions)
        for ts, day_bars in bars:
            if not self.ledger.positions:
                break
            report.closed += self._apply_bar(day_bars, ts, persist_levels=False).closed
        for pid, pos in self.ledger.positions.items():
            if pid in before:
                self._persist_levels(before[pid], pos)
        last = self.last_bar_ts()
        if last is None or until > last:
            self.store.set_state(LAST_BAR_KEY, until.isoformat())
        self.mark_at(
            {p.symbol: closes[p.symbol] for p in self.ledger.positions.values() if p.symbol in closes}, until
        )
        return report

    def close_data_ended(self, symbols: Iterable[str], ts: datetime) -> list[tuple[PaperPosition, Mark]]:
        """Close every open position on `symbols` — instruments whose data ended (no bar for
        `paper.data_ended_sessions` sessions while the market traded: delisted, merged, a file that
        stops) — at its last known close, exit reason `DATA_ENDED`, stamped `ts`, booked and audited as
        any paper exit (the cost model's half spread and slippage apply). Such a position can never
        meet its stop or target again; held, it would be marked at a stale price for ever and count in
        every exposure limit. Returns each closed position with the mark it was closed at."""
        want = set(symbols)
        out: list[tuple[PaperPosition, Mark]] = []
        for pid, pos in list(self.ledger.positions.items()):
            if pos.symbol not in want:
                continue
            seen = self.marks.get(pid)
            mark = seen if seen is not None else Mark(pos.mark or pos.entry_price, pos.opened_at)
            self._close(pos, mark.price, DATA_ENDED, ts)
            out.append((pos, mark))
        return out

    def last_bar_ts(self) -> datetime | None:
        """The newest bar timestamp already processed for exits (so a rerun never replays it)."""
        v = self.store.get_state(LAST_BAR_KEY)
        return datetime.fromisoformat(v) if isinstance(v, str) else None

    def _fill(self, symbol: str, side: Side, level: Decimal) -> Decimal:
        """The cost model's fill price, on the symbol's grid when known (a buy up, a sell down)."""
        price = self.costs.fill_price(side, level)
        on = self._grid(symbol, price, ROUND_CEILING if side is Side.BUY else ROUND_FLOOR)
        if on <= 0 and symbol in self.ticks:  # a price under one tick sells at the first tick
            return self.ticks[symbol]
        return on

    def _close(self, pos: PaperPosition, level: Decimal, reason: str, ts: datetime) -> None:
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        # The same cost model as entries: the exit level is the mid, so a sell gives up half the
        # spread plus slippage and a buy-to-cover pays them (costs.py's docstring).
        price = self._fill(pos.symbol, side, level)
        qty = abs(pos.quantity)
        commission = self.costs.commission(qty, price)
        key, attempt = pos.signal_id or pos.position_id, 0
        coid = client_order_id(key, OrderLeg.EXIT.value)
        while self.store.load_order(coid) is not None:  # an earlier exit interrupted before booking
            attempt += 1
            coid = client_order_id(key, OrderLeg.EXIT.value, attempt)
        intent = OrderIntent(coid, pos.signal_id, OrderLeg.EXIT, pos.symbol, side, qty, reduce_only=True)
        order = Order(intent)
        ids = {"client_order_id": coid, "signal_id": pos.signal_id}
        self.audit.record("order.attempt", _intent_payload(intent, self.mode) | {"reason": reason}, **ids)
        self.store.save_order(order, broker=self.broker, mode=MODE)
        order.transition(OrderState.SUBMITTING, reason)
        order.transition(OrderState.ACCEPTED, "paper ack")
        fill = Fill(f"paper-{coid}", coid, pos.symbol, side, qty, price, ts, commission, coid)
        order.apply_fill(fill)
        with self.store.atomic():
            self.store.save_order(order, broker=self.broker, mode=MODE)
            self.store.record_fill(fill, broker=self.broker, mode=MODE)
            trade = self.ledger.close(pos.position_id, price, commission, ts, reason)
            self.store.close_position(int(pos.position_id), price, reason, trade.pnl, ts)
            self._save_account()
        self.marks.pop(pos.position_id, None)
        self.run_fills.append(fill)
        self.run_closed += 1
        self.audit.record("order.fill", _fill_payload(fill), **ids)
        self.audit.record(
            "position.closed",
            {"symbol": pos.symbol, "price": price, "reason": reason, "pnl": trade.pnl},
            **ids,
        )

    def strategy_exit(
        self, exits: Sequence[StrategyExit], prices: Mapping[str, Decimal], ts: datetime
    ) -> list[dict[str, str]]:
        """Close each position a strategy exit names (`joe.portfolio.strategy_exits`) at `prices[symbol]`
        (the mid: the cost model adds half the spread and slippage, as for every paper fill) at `ts`.
        The paper twin and the shadow book follow the same strategy exits as live this way. Returns one
        row per exit for the report (symbol, signal id, reason, quantity, price, state); a position
        already closed, or a symbol without a price, is said and left as it is."""
        rows: list[dict[str, str]] = []
        for x in exits:
            row = {"symbol": x.symbol, "signal_id": x.signal_id, "reason": x.reason}
            pos = next((p for p in self.ledger.positions.values() if p.signal_id == x.signal_id), None)
            price = prices.get(x.symbol)
            if pos is None:
                row["state"] = "nothing to exit"
            elif price is None or price <= 0:
                row["state"] = "no price: kept"
            else:
                self._close(pos, price, f"strategy exit: {x.reason}", ts)
                fill = self.run_fills[-1]
                row |= {"quantity": str(fill.quantity), "price": str(fill.price), "state": "FILLED"}
            rows.append(row)
        return rows

    def _save_account(self) -> None:
        self.store.save_paper_account(
            cash=self.ledger.cash,
            starting_cash=self.ledger.starting_cash,
            realized_pnl=self.ledger.realized_pnl,
            currency=self.config.paper.currency,
        )

    def mark(self, prices: Mapping[str, Decimal], ts: datetime) -> None:
        """Mark open positions to `prices` (all observed at `ts`) and record an equity point."""
        self.mark_at({sym: Mark(p, ts) for sym, p in prices.items()}, ts)

    def mark_at(self, marks: Mapping[str, Mark], ts: datetime) -> None:
        """Mark open positions to `marks` (symbol → price and its own bar time), record equity at `ts`.

        A position without a new mark keeps its last one (never silently its entry price); the marks
        are saved so the next run starts from them.
        """
        for pid, pos in self.ledger.positions.items():
            if pos.symbol in marks:
                m = marks[pos.symbol]  # a mid between bid and ask: the nearest tick of the grid
                m = Mark(self._grid(pos.symbol, m.price, ROUND_HALF_EVEN), m.ts)
                self.ledger.mark(pid, m.price)
                self.marks[pid] = m
        self.store.set_state(
            MARKS_KEY,
            {
                pid: [str(m.price), m.ts.isoformat()]
                for pid, m in self.marks.items()
                if pid in self.ledger.positions
            },
        )
        self.store.record_equity(ts, MODE, self.ledger.equity, self.ledger.cash)

    def marked_at(self, position_id: str) -> datetime | None:
        """The bar time of a position's mark (None: still at its fill price, never marked)."""
        m = self.marks.get(position_id)
        return m.ts if m else None

    # ------------------------------------------------------------------ queries
    async def positions(self) -> list[Position]:
        return [
            Position(
                p.symbol,
                p.quantity,
                p.entry_price,
                p.mark,
                p.stop_loss,
                p.take_profit,
                p.trailing_distance,
                p.opened_at,
                p.position_id,
                p.signal_id,
            )
            for p in self.ledger.positions.values()
        ]

    async def orders(self) -> list[Order]:
        return self.store.orders(mode=MODE)

    async def account(self) -> AccountInfo:
        lg = self.ledger
        return AccountInfo(
            "paper",
            self.config.paper.currency,
            lg.equity,
            lg.cash,
            lg.cash,
            realized_pnl=lg.realized_pnl,
            unrealized_pnl=lg.unrealized_pnl,
            ts=self._clock(),
        )

    async def track_record(self, now: datetime | None = None) -> TrackRecordSummary:
        tr = self.store.paper_track_record(now or self._clock())
        closed = self.store.closed_positions(MODE)
        wins = sum(1 for p in closed if p.realized_pnl > 0)
        return TrackRecordSummary(
            tr.paper_days,
            tr.closed_paper_trades,
            wins / len(closed) if closed else 0.0,
            self.ledger.realized_pnl,
        )


def _intent_payload(intent: OrderIntent, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "quantity": intent.quantity,
        "type": intent.order_type.value,
        "leg": intent.leg.value,
        "stop_loss": intent.stop_loss,
        "take_profit": intent.take_profit,
        "trailing_distance": intent.trailing_distance,
    }


def _fill_payload(fill: Fill) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": fill.commission,
        "ts": fill.ts,
    }
