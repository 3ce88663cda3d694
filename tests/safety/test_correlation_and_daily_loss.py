"""Review of issue 11, point 4: the correlated-exposure rule signs exposure by direction × correlation
(long SPY + short SPXU is one bet) and does not treat an unknown correlation as "uncorrelated"; the
daily loss limit has a starting equity on the book's first day too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.core.models import AccountInfo, Position
from joe.safety.paper_book import daily_book
from joe.safety.risk_gate import GateBook, ProposedOrder, RiskGate
from joe.safety.rules.account import DailyLossLimit
from joe.safety.rules.exposure import CorrelatedExposure
from joe.store import open_store

D = Decimal
NOW = datetime(2018, 2, 2, 21, tzinfo=UTC)


class _Gate:
    config = RiskConfig()


def _returns() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, 60)
    return pd.DataFrame(
        {
            "SPY": base,
            "SPXU": -base + rng.normal(0, 0.0005, 60),  # an inverse fund: correlation ≈ -1
            "VOO": base + rng.normal(0, 0.0005, 60),
            "XOM": rng.normal(0, 0.01, 60),  # unrelated
            "NEW": [np.nan] * 55 + list(base[-5:]),  # listed five days ago
        }
    )


def _book(*positions: Position) -> GateBook:
    return GateBook(now=NOW, equity=D(100_000), positions=list(positions), quotes={}, returns=_returns())


def test_a_pair_read_from_the_book_is_the_correlation_frames_cell() -> None:
    book = _book()
    corr = book.correlations(60)
    assert corr is not None
    for a in corr.index:
        for b in corr.columns:
            got, want = book.correlation_between(a, b, 60), float(corr.at[a, b])
            assert got == want or (got is not None and np.isnan(got) and np.isnan(want)), (a, b)
    assert book.correlation_between("SPY", "NOPE", 60) is None
    assert book.correlation_between("NOPE", "SPY", 60) is None
    # the book as if an order filled shares the cache (the returns did not change)
    after = book.with_order(ProposedOrder("s", "VOO", D(1), D(100)))
    assert after.correlation_between("SPY", "VOO", 60) == float(corr.at["SPY", "VOO"])
    no_returns = GateBook(now=NOW, equity=D(100_000), positions=[], quotes={})
    assert no_returns.correlation_between("SPY", "VOO", 60) is None


SPY_LONG = Position("SPY", D(90), D(100), market_price=D(100))  # 9 % of equity
SPY_SHORT = Position("SPY", D(-90), D(100), market_price=D(100))


@pytest.mark.parametrize(
    ("held", "order", "denied"),
    [
        (SPY_LONG, ProposedOrder("s", "VOO", D(90), D(100)), True),  # +1, same direction: 18 %
        (SPY_LONG, ProposedOrder("s", "SPXU", D(-90), D(100)), True),  # -1, opposite direction: same bet
        (SPY_LONG, ProposedOrder("s", "SPXU", D(90), D(100)), False),  # -1, same direction: a hedge
        (SPY_SHORT, ProposedOrder("s", "SPXU", D(90), D(100)), True),  # short SPY + long SPXU: one bet
        (SPY_SHORT, ProposedOrder("s", "VOO", D(-90), D(100)), True),
        (SPY_LONG, ProposedOrder("s", "VOO", D(-90), D(100)), False),  # +1, opposite: a hedge
        (SPY_LONG, ProposedOrder("s", "XOM", D(90), D(100)), False),  # uncorrelated
    ],
)
def test_exposure_is_signed_by_direction_and_correlation(
    held: Position, order: ProposedOrder, denied: bool
) -> None:
    d = CorrelatedExposure().check(order, _book(held), _Gate())  # type: ignore[arg-type]
    assert (d is not None) is denied, d and d.text()
    if d is not None:
        assert "18.00%" in d.text() and "limit 10.00%" in d.text()
        if order.symbol == "SPXU":
            assert "inverse" in d.text()


def test_an_unknown_correlation_counts_as_correlated_and_says_why() -> None:
    d = CorrelatedExposure().check(ProposedOrder("s", "NEW", D(90), D(100)), _book(SPY_LONG), _Gate())  # type: ignore[arg-type]
    assert d is not None
    text = d.text()
    assert "NEW (5 bars)" in text and "SPY 60 bars" in text and "needs 20 bars" in text and "18.00%" in text
    # Even as the "hedge" direction: an unknown correlation never reduces the exposure.
    d = CorrelatedExposure().check(ProposedOrder("s", "NEW", D(-90), D(100)), _book(SPY_LONG), _Gate())  # type: ignore[arg-type]
    assert d is not None and "18.00%" in d.text()
    # A symbol never seen at all (no returns column) is unknown too.
    d = CorrelatedExposure().check(ProposedOrder("s", "ZZZ", D(90), D(100)), _book(SPY_LONG), _Gate())  # type: ignore[arg-type]
    assert d is not None and "ZZZ (0 bars)" in d.text()
    # Small enough together, it is allowed: unknown is counted, not forbidden.
    small = Position("SPY", D(20), D(100), market_price=D(100))
    assert CorrelatedExposure().check(ProposedOrder("s", "NEW", D(20), D(100)), _book(small), _Gate()) is None  # type: ignore[arg-type]


class _Panel:
    """What `daily_book` reads from a `joe.analysis.panel.Panel`."""

    def __init__(self) -> None:
        self.dates = pd.DatetimeIndex([NOW - timedelta(days=1), NOW])
        self.symbols = ["AAA"]
        self.close = np.array([[100.0], [100.0]])

    def col(self, s: str) -> int:
        return self.symbols.index(s)

    def date_at(self, t: int) -> datetime:
        return self.dates[t].to_pydatetime()


def _account(equity: str) -> AccountInfo:
    return AccountInfo("paper", "USD", D(equity), D(equity), D(equity))


def _day_book(
    tmp_path: Path, equity: str, *, marks: list[tuple[datetime, str]], opening: str | None
) -> GateBook:
    store = open_store(data_dir=tmp_path)
    try:
        for ts, eq in marks:
            store.record_equity(ts, "paper", D(eq), D(eq))
        return daily_book(
            store=store,
            mode="paper",
            panel=_Panel(),
            instruments={},
            as_of_idx=1,
            account=_account(equity),
            positions=[],
            symbols=["AAA"],
            lookback=60,
            opening_equity=D(opening) if opening else None,
        )
    finally:
        store.close()


def _daily_loss(book: GateBook) -> str | None:
    gate = RiskGate(RiskConfig(daily_loss_limit_pct=3), NullAudit(), clock=lambda: NOW)
    d = DailyLossLimit().check(ProposedOrder("s", "AAA", D(1), D(100)), book, gate)
    return None if d is None else d.text()


def test_daily_loss_limit_on_the_books_first_day_without_any_mark(tmp_path: Path) -> None:
    book = _day_book(tmp_path, "96960", marks=[], opening="100000")
    assert book.day_start_equity == D(100_000)
    text = _daily_loss(book)
    assert text is not None and "daily_loss_limit" in text and "3.04%" in text


def test_daily_loss_limit_on_the_first_day_with_only_todays_marks(tmp_path: Path) -> None:
    book = _day_book(tmp_path, "96960", marks=[(NOW - timedelta(hours=6), "100000")], opening=None)
    assert book.day_start_equity == D(100_000)
    assert _daily_loss(book) is not None
    # A later day measures from the last mark of an earlier day, as before.
    book = _day_book(tmp_path / "b", "97500", marks=[(NOW - timedelta(days=1), "98000")], opening="100000")
    assert book.day_start_equity == D(98_000) and _daily_loss(book) is None
