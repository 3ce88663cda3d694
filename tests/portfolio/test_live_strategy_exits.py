"""Strategy exits for live positions (`joe.portfolio.strategy_exits`): which held positions the strategy
asks to leave, and which entries would reverse a position. End to end (the exit sent reduce-only at
both simulators, once) in tests/runtime/test_live_runs.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from joe.core.models import Direction, Position, Signal
from joe.portfolio.strategy_exits import StrategyExit, held_against, strategy_exits

T = datetime(2024, 3, 1, tzinfo=UTC)


def sig(symbol: str, long: bool, sid: str = "new") -> Signal:
    e = Decimal(100)
    stop, target = (Decimal(95), Decimal(110)) if long else (Decimal(105), Decimal(90))
    d = Direction.LONG if long else Direction.SHORT
    return Signal(sid, symbol, "trend", d, e, stop, target, 0.7, "t", T, quantity=Decimal(5))


def pos(symbol: str, qty: int, sid: str | None = "old") -> Position:
    return Position(symbol, Decimal(qty), Decimal(100), signal_id=sid)


def test_a_reversed_signal_and_a_symbol_out_of_the_universe_exit_joes_positions_only() -> None:
    held = [pos("AAPL", 10, "a"), pos("MSFT", -5, "m"), pos("NVDA", 3, "n"), pos("TSLA", 7, None)]
    approved = [sig("AAPL", long=False), sig("MSFT", long=False), sig("TSLA", long=False)]
    out = strategy_exits(held, approved, universe={"AAPL", "MSFT"})
    assert out == [
        StrategyExit("a", "AAPL", "signal reversed: SHORT signal new against the LONG position"),
        StrategyExit("n", "NVDA", "instrument left the universe"),
    ]  # MSFT: same direction, kept; TSLA: not Joe's (external), never touched
    assert strategy_exits(held, [], universe=[]) == []  # no universe known: nothing judged on it


def test_an_entry_against_a_held_position_is_found() -> None:
    held = [pos("AAPL", 10), pos("MSFT", -5)]
    assert held_against(held, sig("AAPL", long=False)) == held[0]
    assert held_against(held, sig("AAPL", long=True)) is None
    assert held_against(held, sig("MSFT", long=True)) == held[1]
    assert held_against(held, sig("NVDA", long=False)) is None


@given(
    qtys=st.lists(st.integers(-50, 50), min_size=1, max_size=6),
    dirs=st.lists(st.booleans(), min_size=1, max_size=6),
    keep=st.sets(st.integers(0, 5)),
)
def test_exits_only_ever_name_held_positions_once(qtys: list[int], dirs: list[bool], keep: set[int]) -> None:
    symbols = [f"S{i}" for i in range(len(qtys))]
    held = [pos(s, q, f"sig-{s}") for s, q in zip(symbols, qtys, strict=True)]
    approved = [sig(s, d) for s, d in zip(symbols, dirs, strict=False)]
    universe = {symbols[i] for i in keep if i < len(symbols)} or {"NONE"}
    out = strategy_exits(held, approved, universe)
    assert len({x.signal_id for x in out}) == len(out)
    for x in out:
        p = next(p for p in held if p.signal_id == x.signal_id)
        assert p.quantity != 0
        reversed_ = any(
            a.symbol == p.symbol and a.direction is not p.direction for a in approved[:1] + approved
        )
        assert reversed_ or p.symbol not in universe
