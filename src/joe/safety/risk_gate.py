"""`RiskGate`: the pre-trade check every entry passes, in every mode (paper included).

`RiskGate.screen(signals, book)` judges a batch of entry intents in order against a `GateBook`
(equity, positions, quotes, history at the decision time). Each intent the gate accepts joins the
book before the next is judged, so three correlated shorts cannot all slip under one cap. Exits and
cancels never pass through here: they are always allowed (principle 3).

Each rule (`joe.safety.rules`) answers one question and, when it says no, returns a `Denial` naming
the rule, the number it measured and the limit. Every denial is audited (``risk.denied``, with the
signal id) and its text lands in the report's signal table. The limits come from the ``risk:``
section of ``config/execution.yaml`` (see `joe.config.schema.RiskConfig` for each default and why).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd

from joe.brokers.base import WhatIfResult
from joe.config.schema import RiskConfig
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.models import Instrument, Position, Signal
from joe.safety.protections.policies import Lock


@dataclass(frozen=True, slots=True)
class QuoteMark:
    """The last price known for a symbol and when it was observed (UTC)."""

    price: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class ProposedOrder:
    """One entry intent as the gate sees it: signed quantity (> 0 buy/long, < 0 sell/short)."""

    signal_id: str
    symbol: str
    quantity: Decimal
    price: Decimal

    @property
    def notional(self) -> Decimal:
        return abs(self.quantity) * self.price

    @classmethod
    def from_signal(cls, s: Signal) -> ProposedOrder:
        qty = s.quantity if s.quantity is not None else Decimal(0)
        return cls(s.signal_id, s.symbol, qty * s.direction.sign, s.entry)


@dataclass
class GateBook:
    """What the gate judges against, at decision time `now`.

    `daily_bars` marks a run on daily closes (paper, backtest): quotes are bar closes, "stale" means
    older than the decision day and "market closed" means the day is not a session; otherwise quotes
    are live and judged in seconds and minutes. `returns` holds daily returns (columns = symbols)
    for the correlation clusters. Equity figures are in the account currency.
    """

    now: datetime
    equity: Decimal
    positions: list[Position]
    quotes: Mapping[str, QuoteMark]
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    day_start_equity: Decimal | None = None
    peak_equity: Decimal | None = None
    available_funds: Decimal | None = None
    returns: pd.DataFrame | None = None
    daily_bars: bool = True
    locks: list[Lock] = field(default_factory=list)  # the protections' locks at `now`
    # {symbol: tradeable now} where the broker reports a market's own status (Capital.com marketStatus);
    # it rules over the exchange calendar for those symbols (live books only: `joe.safety.live_book`).
    market_open: Mapping[str, bool] = field(default_factory=dict)
    # `returns` built on first use when no frame was given (`daily_returns`): the paper book on daily
    # bars passes its builder: a book whose intents meet no held position never reads the returns.
    returns_fn: Callable[[], pd.DataFrame | None] | None = field(default=None, repr=False)
    _returns_built: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)
    _corr: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False)
    # Per lookback: symbol → row, symbol → column and the matrix of `correlations` (a pandas `.at` costs
    # more than the rest of a rule's check; the gate reads one pair per held position per intent).
    _corr_at: dict[int, tuple[dict[str, int], dict[str, int], np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def daily_returns(self) -> pd.DataFrame | None:
        """`returns`, or what `returns_fn` builds (once per book and the books `with_order` derives)."""
        if self.returns is not None or self.returns_fn is None:
            return self.returns
        if "returns" not in self._returns_built:
            self._returns_built["returns"] = self.returns_fn()
        return self._returns_built["returns"]

    def correlations(self, lookback: int) -> pd.DataFrame | None:
        """Pairwise correlation of the last `lookback` daily returns (computed once per book)."""
        cached = self._corr.get(lookback)
        returns = self.daily_returns() if cached is None else None
        if returns is not None and not returns.empty:
            cached = returns.tail(lookback).corr(min_periods=max(10, lookback // 3))  # = min_history
            self._corr[lookback] = cached
        return cached

    def correlation_between(self, a: str, b: str, lookback: int) -> float | None:
        """`float(correlations(lookback).at[a, b])` (NaN included); None when there is no correlation
        matrix or `a` is not among its rows or `b` among its columns."""
        got = self._corr_at.get(lookback)
        if got is None:
            corr = self.correlations(lookback)
            if corr is None:
                return None
            rows = {s: i for i, s in enumerate(corr.index)}
            cols = {s: j for j, s in enumerate(corr.columns)}
            got = self._corr_at[lookback] = (rows, cols, corr.to_numpy(dtype=np.float64))
        rows, cols, m = got
        i, j = rows.get(a), cols.get(b)
        return None if i is None or j is None else float(m[i, j])

    def with_order(self, o: ProposedOrder) -> GateBook:
        """The book as if `o` had filled at its price (for judging the next intent of a batch)."""
        pos = Position(o.symbol, o.quantity, o.price, market_price=o.price, signal_id=o.signal_id)
        return replace(self, positions=[*self.positions, pos])


@dataclass(frozen=True, slots=True)
class Denial:
    """Why an intent was refused: the rule, what it measured, the limit."""

    rule: str
    message: str
    value: str
    limit: str

    def text(self) -> str:
        return f"denied: {self.rule}: {self.message} ({self.value} vs limit {self.limit})"


class Rule(Protocol):
    """One pre-trade question. `check` returns None to allow, a `Denial` to refuse."""

    name: str

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None: ...


WhatIf = Callable[[ProposedOrder], WhatIfResult | None]


class RiskGate:
    """Runs every rule on every entry (see the module docstring).

    `clock` is the wall clock for the order-rate limits (orders really sent per second and minute),
    `whatif` the broker's margin preview (IBKR ``whatIfOrder``) where there is one.
    """

    def __init__(
        self,
        config: RiskConfig,
        audit: AuditSink,
        *,
        rules: Sequence[Rule] | None = None,
        clock: Callable[[], datetime] = utcnow,
        whatif: WhatIf | None = None,
    ) -> None:
        from joe.safety.rules import default_rules

        self.config = config
        self.audit = audit
        self.rules = list(rules) if rules is not None else default_rules()
        self.clock = clock
        self.whatif = whatif
        self.sent: deque[datetime] = deque()  # when approved orders were released (rate limits)

    def check(self, order: ProposedOrder, book: GateBook) -> Denial | None:
        """The first rule that refuses `order`, or None (approved). Does not audit."""
        for rule in self.rules:
            denial = rule.check(order, book, self)
            if denial is not None:
                return denial
        return None

    def screen(self, signals: Sequence[Signal], book: GateBook) -> tuple[list[Signal], dict[str, str]]:
        """Judge `signals` in order; returns (approved, {signal_id: denial text}). Audits each denial."""
        approved: list[Signal] = []
        denied: dict[str, str] = {}
        for s in signals:
            order = ProposedOrder.from_signal(s)
            denial = self.check(order, book)
            if denial is None:
                approved.append(s)
                book = book.with_order(order)
                self.sent.append(self.clock())
                continue
            denied[s.signal_id] = denial.text()
            self.audit.record(
                "risk.denied",
                {
                    "rule": denial.rule,
                    "message": denial.message,
                    "value": denial.value,
                    "limit": denial.limit,
                    "symbol": s.symbol,
                    "quantity": order.quantity,
                    "price": order.price,
                },
                signal_id=s.signal_id,
            )
        if signals:
            self.audit.record("risk.screened", {"approved": len(approved), "denied": len(denied)})
        return approved, denied
