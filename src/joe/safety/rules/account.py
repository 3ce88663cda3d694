"""Rules on the account: daily loss limit, drawdown from peak, order rate, the broker's margin preview."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.safety.rules.order import _deny, _pct

if TYPE_CHECKING:
    from joe.safety.risk_gate import Denial, GateBook, ProposedOrder, RiskGate


class DailyLossLimit:
    """``risk.daily_loss_limit_pct``: after losing this much of the day's opening equity, no new entry
    until the next day (the issue's case: -3.04 % on 2018-02-02 with a 3 % limit)."""

    name = "daily_loss_limit"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        start = book.day_start_equity
        if start is None or start <= 0:
            return None
        loss = (start - book.equity) / start * 100
        limit = gate.config.daily_loss_limit_pct
        if loss >= limit:
            return _deny(self.name, f"today's loss {start - book.equity} of {start}", _pct(loss), _pct(limit))
        return None


class MaxDrawdown:
    """``risk.max_drawdown_pct``: no new entry while equity is this far below its peak."""

    name = "max_drawdown"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        peak = book.peak_equity
        if peak is None or peak <= 0:
            return None
        dd = (peak - book.equity) / peak * 100
        limit = gate.config.max_drawdown_pct
        if dd >= limit:
            return _deny(self.name, f"equity {book.equity} vs peak {peak}", _pct(dd), _pct(limit))
        return None


class OrderRate:
    """``risk.max_orders_per_second`` / ``risk.max_orders_per_minute``: a runaway loop stops at the gate."""

    name = "order_rate"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        now = gate.clock()
        while gate.sent and now - gate.sent[0] > timedelta(minutes=1):
            gate.sent.popleft()
        per_min = len(gate.sent)
        per_sec = sum(1 for t in gate.sent if now - t < timedelta(seconds=1))
        cfg = gate.config
        if per_sec >= cfg.max_orders_per_second:
            return _deny(self.name, "orders in the last second", per_sec + 1, cfg.max_orders_per_second)
        if per_min >= cfg.max_orders_per_minute:
            return _deny(self.name, "orders in the last minute", per_min + 1, cfg.max_orders_per_minute)
        return None


class MarginWhatIf:
    """The broker's margin preview (IBKR ``whatIfOrder``) before each entry, where there is one: refuse
    when the initial margin the order adds exceeds the available funds, or the broker warns."""

    name = "margin_whatif"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        if gate.whatif is None:
            return None
        try:
            result = gate.whatif(order)
        except Exception as e:  # fail closed: no preview, no entry
            return _deny(self.name, f"margin preview failed: {type(e).__name__}", "error", "a preview")
        if result is None:
            return None
        if result.warning:
            return _deny(self.name, f"broker warns: {result.warning}", "warning", "none")
        avail = book.available_funds
        if avail is not None and result.init_margin_change > avail:
            return _deny(self.name, "initial margin the order adds", result.init_margin_change, avail)
        if result.equity_with_loan_after is not None and result.equity_with_loan_after < Decimal(0):
            return _deny(self.name, "equity with loan after the order", result.equity_with_loan_after, "≥ 0")
        return None
