"""Stop, target and trailing exits on bars."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from joe.portfolio.exits import PriceBar, check_exit, ratchet
from joe.portfolio.ledger import PaperPosition

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def long_pos(**kw: object) -> PaperPosition:
    base = dict(
        position_id="p",
        symbol="X",
        quantity=D(10),
        entry_price=D(100),
        entry_commission=D(0),
        opened_at=T0,
        signal_id="s",
        stop_loss=D(95),
        take_profit=D(110),
        best_price=D(100),
    )
    base.update(kw)
    return PaperPosition(**base)  # type: ignore[arg-type]


def test_long_stop_target_and_gaps() -> None:
    p = long_pos()
    assert check_exit(p, PriceBar(D(100), D(104), D(96), D(101))) is None
    assert check_exit(p, PriceBar(D(100), D(104), D(94), D(101))) == (D(95), "stop loss")
    assert check_exit(p, PriceBar(D(90), D(92), D(89), D(91))) == (D(90), "stop loss (gap)")
    assert check_exit(p, PriceBar(D(100), D(111), D(99), D(109))) == (D(110), "take profit")
    assert check_exit(p, PriceBar(D(115), D(116), D(113), D(114))) == (D(115), "take profit (gap)")
    # Both inside one bar: the stop is assumed first (conservative).
    assert check_exit(p, PriceBar(D(100), D(111), D(94), D(100)))[1] == "stop loss"  # type: ignore[index]


def test_short_mirrors_long() -> None:
    p = long_pos(quantity=D(-10), stop_loss=D(105), take_profit=D(90))
    assert check_exit(p, PriceBar(D(100), D(106), D(99), D(100))) == (D(105), "stop loss")
    assert check_exit(p, PriceBar(D(100), D(101), D(89), D(95))) == (D(90), "take profit")
    assert check_exit(p, PriceBar(D(108), D(109), D(107), D(108))) == (D(108), "stop loss (gap)")


@given(st.lists(st.decimals(min_value=D(50), max_value=D(200), places=2), min_size=1, max_size=30))
def test_trailing_stop_never_loosens(highs: list[D]) -> None:
    p = long_pos(stop_loss=D(90), take_profit=D(10_000), trailing_distance=D(5))
    for h in highs:
        before = p.stop_loss
        p = ratchet(p, PriceBar(h, h, h, h))
        assert p.stop_loss is not None and before is not None and p.stop_loss >= before
        assert p.stop_loss >= (p.best_price or D(0)) - D(5)
