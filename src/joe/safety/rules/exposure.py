"""Rules on exposure: open positions, per symbol, total (gross), and correlated clusters."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from joe.core.models import Position
from joe.safety.rules.order import _deny, _pct

if TYPE_CHECKING:
    from joe.safety.risk_gate import Denial, GateBook, ProposedOrder, RiskGate


def _notional(p: Position) -> Decimal:
    """Signed notional at the position's market price (its entry price when unmarked)."""
    px = p.market_price if p.market_price is not None else p.avg_price
    return p.quantity * px


class MaxOpenPositions:
    """``risk.max_positions``: open positions at most (counting the ones this batch already approved)."""

    name = "max_open_positions"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        n = sum(1 for p in book.positions if p.quantity != 0)
        if n >= gate.config.max_positions:
            return _deny(self.name, "open positions", n + 1, gate.config.max_positions)
        return None


class SymbolExposure:
    """``risk.max_symbol_exposure_pct``: all positions in one symbol, after this order, at most this % of
    equity (``risk.max_positions_per_symbol`` caps their count)."""

    name = "symbol_exposure"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        same = [p for p in book.positions if p.symbol == order.symbol and p.quantity != 0]
        cfg = gate.config
        if len(same) >= cfg.max_positions_per_symbol:
            return _deny(
                self.name, f"positions in {order.symbol}", len(same) + 1, cfg.max_positions_per_symbol
            )
        exposure = abs(sum((_notional(p) for p in same), Decimal(0)) + order.quantity * order.price)
        pct = exposure / book.equity * 100 if book.equity > 0 else Decimal(100)
        if pct > cfg.max_symbol_exposure_pct:
            return _deny(
                self.name, f"{order.symbol} exposure {exposure}", _pct(pct), _pct(cfg.max_symbol_exposure_pct)
            )
        return None


class TotalExposure:
    """``risk.max_gross_exposure_pct``: the sum of every position's absolute notional, after this order."""

    name = "total_exposure"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        gross = sum((abs(_notional(p)) for p in book.positions), Decimal(0)) + order.notional
        pct = gross / book.equity * 100 if book.equity > 0 else Decimal(100)
        limit = gate.config.max_gross_exposure_pct
        if pct > limit:
            return _deny(self.name, f"gross exposure {gross}", _pct(pct), _pct(limit))
        return None


def root(symbol: str) -> str:
    """The company behind a symbol: ``MSFT@pmdarima`` and ``MSFT`` are one (same listing, other source)."""
    return symbol.split("@", 1)[0].upper()


def correlated(a: str, b: str, book: GateBook, threshold: float, lookback: int) -> float | None:
    """The correlation of daily returns of `a` and `b` when it reaches `threshold` (1.0 for one company)."""
    if a == b or root(a) == root(b):
        return 1.0
    corr = book.correlations(lookback)
    if corr is None or a not in corr.index or b not in corr.columns:
        return None
    c = float(corr.at[a, b])
    return c if not np.isnan(c) and c >= threshold else None


class CorrelatedExposure:
    """``risk.max_cluster_exposure_pct``: instruments whose daily returns correlate at or above
    ``risk.correlation_threshold`` over ``risk.correlation_lookback`` bars — and listings of one company —
    are one exposure: their net notional, after this order, at most this % of equity."""

    name = "correlated_exposure"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        cfg = gate.config
        members = [
            p
            for p in book.positions
            if p.quantity != 0
            and correlated(order.symbol, p.symbol, book, cfg.correlation_threshold, cfg.correlation_lookback)
        ]
        if not members:
            return None
        net = abs(sum((_notional(p) for p in members), Decimal(0)) + order.quantity * order.price)
        pct = net / book.equity * 100 if book.equity > 0 else Decimal(100)
        if pct > cfg.max_cluster_exposure_pct:
            names = ", ".join(sorted({p.symbol for p in members}))
            return _deny(
                self.name,
                f"{order.symbol} moves with {names}: cluster exposure {net}",
                _pct(pct),
                _pct(cfg.max_cluster_exposure_pct),
            )
        return None
