"""Paper accounting invariants, by property test over random trade sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.portfolio.ledger import LedgerError, PaperLedger, PaperPosition

T0 = datetime(2024, 1, 1, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(500), places=2)
qtys = st.integers(min_value=1, max_value=400).map(Decimal)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=2)

op = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(["A", "B", "C"]), qtys, st.booleans(), prices, fees),
    st.tuples(st.just("mark"), st.integers(0, 9), prices),
    st.tuples(st.just("close"), st.integers(0, 9), prices, fees),
)


def check_invariants(lg: PaperLedger) -> None:
    marked = sum((p.quantity * p.mark_price for p in lg.positions.values()), Decimal(0))
    assert lg.equity == lg.cash + marked
    assert lg.realized_pnl == sum((t.pnl for t in lg.closed), Decimal(0))
    open_part = sum((p.unrealized_pnl - p.entry_commission for p in lg.positions.values()), Decimal(0))
    assert lg.equity == lg.starting_cash + lg.realized_pnl + open_part
    if not lg.allow_margin:
        assert lg.cash >= 0
        assert all(p.quantity > 0 for p in lg.positions.values())


@settings(max_examples=300)
@given(st.booleans(), st.lists(op, max_size=40))
def test_accounting_invariants(allow_margin: bool, ops: list[tuple]) -> None:
    lg = PaperLedger.new(Decimal(100_000), allow_margin=allow_margin)
    n = 0
    for o in ops:
        ids = sorted(lg.positions)
        if o[0] == "open":
            _, sym, q, short, px, fee = o
            n += 1
            pos = PaperPosition(f"p{n}", sym, -q if short else q, px, fee, T0, f"s{n}")
            cash_before = lg.cash
            try:
                lg.open(pos)
            except LedgerError:
                assert lg.cash == cash_before
                assert f"p{n}" not in lg.positions
        elif o[0] == "mark" and ids:
            lg.mark(ids[o[1] % len(ids)], o[2])
        elif o[0] == "close" and ids:
            pid = ids[o[1] % len(ids)]
            lg.close(pid, o[2], o[3], T0 + timedelta(days=1), "test")
        check_invariants(lg)


def test_cash_account_refuses_shorts_and_overspending() -> None:
    lg = PaperLedger.new(Decimal(1000))
    with pytest.raises(LedgerError, match="margin"):
        lg.open(PaperPosition("p1", "X", Decimal(-1), Decimal(10), Decimal(1), T0, "s"))
    with pytest.raises(LedgerError, match="insufficient cash"):
        lg.open(PaperPosition("p2", "X", Decimal(100), Decimal(10), Decimal(1), T0, "s"))
    assert lg.cash == Decimal(1000) and not lg.positions


def test_round_trip_pnl_is_net_of_both_commissions() -> None:
    lg = PaperLedger.new(Decimal(10_000))
    lg.open(PaperPosition("p1", "X", Decimal(10), Decimal(100), Decimal(1), T0, "s"))
    trade = lg.close("p1", Decimal(110), Decimal(1), T0, "take profit")
    assert trade.pnl == Decimal(98)
    assert lg.cash == Decimal(10_098)
    assert lg.equity == Decimal(10_098)
