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
    """The correlation of daily returns of `a` and `b` when its size reaches `threshold` (1.0 for one
    company; negative for an inverse pair), else None — also when it is unknown (see `correlation`)."""
    c = correlation(a, b, book, lookback)
    return c if c is not None and abs(c) >= threshold else None


def correlation(a: str, b: str, book: GateBook, lookback: int) -> float | None:
    """The correlation of `a` and `b` over the last `lookback` daily returns; None when unknown (too
    little common history: fewer than `min_history(lookback)` bars)."""
    if a == b or root(a) == root(b):
        return 1.0
    c = book.correlation_between(a, b, lookback)
    return None if c is None or np.isnan(c) else c


def min_history(lookback: int) -> int:
    """Daily returns needed before a correlation counts (`GateBook.correlations` uses the same)."""
    return max(10, lookback // 3)


def history(symbol: str, book: GateBook, lookback: int) -> int:
    """How many of the last `lookback` daily returns of `symbol` the book has."""
    returns = book.daily_returns()
    if returns is None or symbol not in returns.columns:
        return 0
    return int(returns[symbol].tail(lookback).notna().sum())


class CorrelatedExposure:
    """``risk.max_cluster_exposure_pct``: instruments whose daily returns correlate — positively or
    negatively — at or beyond ``risk.correlation_threshold`` over ``risk.correlation_lookback`` bars, and
    listings of one company, are one exposure: after this order, their net notional in the order's terms
    (each position's signed notional times the sign of its correlation: long SPY and short SPXU are the
    same bet, long both is a hedge) at most this % of equity.

    An unknown correlation (too little history for either symbol, fewer than `min_history` bars) is not
    taken as "uncorrelated": that position is counted as correlated in the direction that adds to the
    order (fail closed), and a denial names the history lengths.
    """

    name = "correlated_exposure"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        cfg = gate.config
        lookback = cfg.correlation_lookback
        order_notional = order.quantity * order.price
        side = Decimal(1) if order_notional >= 0 else Decimal(-1)
        net = order_notional
        members: list[str] = []
        unknown: list[str] = []
        for p in book.positions:
            if p.quantity == 0:
                continue
            c = correlation(order.symbol, p.symbol, book, lookback)
            if c is None:
                net += side * abs(_notional(p))  # unknown: assume the worst, it adds to the order
                unknown.append(p.symbol)
            elif abs(c) >= cfg.correlation_threshold:
                net += _notional(p) * (Decimal(1) if c > 0 else Decimal(-1))
                members.append(p.symbol if c > 0 else f"{p.symbol} (inverse, {c:+.2f})")
        if not members and not unknown:
            return None
        exposure = abs(net)
        pct = exposure / book.equity * 100 if book.equity > 0 else Decimal(100)
        if pct > cfg.max_cluster_exposure_pct:
            parts = []
            if members:
                parts.append(f"{order.symbol} moves with {', '.join(sorted(set(members)))}")
            if unknown:
                need = min_history(lookback)
                have = history(order.symbol, book, lookback)
                lengths = ", ".join(f"{s} {history(s, book, lookback)}" for s in sorted(set(unknown)))
                parts.append(
                    f"correlation of {order.symbol} ({have} bars) with {lengths} bars unknown "
                    f"(needs {need} bars of history), counted as correlated"
                )
            return _deny(
                self.name,
                "; ".join(parts) + f": cluster exposure {exposure}",
                _pct(pct),
                _pct(cfg.max_cluster_exposure_pct),
            )
        return None
