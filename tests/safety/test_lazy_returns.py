"""The paper book's daily returns are built when a rule first reads them (`GateBook.daily_returns`),
and are then the very frame `paper_book._returns` gives; the books `with_order` derives share them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from joe.core.models import AccountInfo, Position
from joe.safety.paper_book import _returns, daily_book
from joe.safety.risk_gate import GateBook, ProposedOrder

D = Decimal
DATES = pd.date_range("2020-01-01", periods=80, freq="B", tz="UTC")
SYMBOLS = ["AAA", "BBB", "CCC"]


class _Panel:
    dates = DATES
    symbols = SYMBOLS
    close = np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, (len(DATES), 3)), axis=0)) * 100

    def col(self, s: str) -> int:
        return SYMBOLS.index(s)

    def date_at(self, t: int) -> datetime:
        return self.dates[t].to_pydatetime()


class _Store:
    def equity_marks(self, mode: str, now: datetime, account: str = "") -> tuple[None, None]:
        return None, None

    def closed_positions(self, mode: str, since: datetime | None = None) -> list[object]:
        return []


def _book(calls: list[int], t: int = 70) -> GateBook:
    book = daily_book(
        store=_Store(),  # type: ignore[arg-type]
        mode="paper",
        panel=_Panel(),
        instruments={},
        as_of_idx=t,
        account=AccountInfo("paper", "USD", D(100_000), D(100_000), D(100_000)),
        positions=[Position("BBB", D(10), D(100), market_price=D(100))],
        symbols=["AAA", "CCC"],
        lookback=60,
        opening_equity=D(100_000),
    )
    build = book.returns_fn
    assert build is not None

    def counted() -> pd.DataFrame | None:
        calls.append(1)
        return build()

    book.returns_fn = counted
    return book


def test_returns_are_built_on_first_read_only_and_equal_the_frame() -> None:
    calls: list[int] = []
    book = _book(calls)
    assert book.returns is None and not calls  # nothing built for a book no rule asked
    got = book.daily_returns()
    panel = _Panel()
    want = _returns({s: panel.close[10:71, panel.col(s)] for s in SYMBOLS}, DATES[10:71])
    assert got is not None
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    later = book.with_order(ProposedOrder("s1", "AAA", D(5), D(100)))
    assert later.daily_returns() is got and book.correlations(60) is later.correlations(60)
    assert calls == [1]


def test_a_given_frame_wins() -> None:
    frame = pd.DataFrame({"AAA": [0.01, 0.02]})
    book = GateBook(now=datetime(2020, 1, 1, tzinfo=UTC), equity=D(1), positions=[], quotes={}, returns=frame)
    assert book.daily_returns() is frame
