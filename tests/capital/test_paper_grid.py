"""Paper prices of instruments with known rules sit on the broker's tick grid (issue 18, point 6).

A paper run on Capital.com instruments books the fill, the stop, the target, the trail distance and
every trailed stop on the instrument's `tickSize` grid (what `positions.csv` and the reports show),
rounding so the fill is never better than the cost model and the stop never tighter than asked.
Instruments without known rules are booked exactly as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Side, Signal
from joe.portfolio import PaperPortfolio, PriceBar
from joe.store import open_store

T0 = datetime(2026, 11, 2, tzinfo=UTC)
TICKS = {"SILVER": D("0.001"), "EURUSD": D("0.00001"), "US500": D("0.1")}


def load(tmp: Path) -> PaperPortfolio:
    store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
    pf = PaperPortfolio.load(store, NullAudit(), ExecutionConfig(), broker="capital")
    pf.set_ticks(TICKS)
    return pf


def on(x: D | None, tick: D) -> bool:
    return x is None or x % tick == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    symbol=st.sampled_from(sorted(TICKS)),
    direction=st.sampled_from([Direction.LONG, Direction.SHORT]),
    entry=st.decimals(min_value=D("0.5"), max_value=D("6000"), places=8),
    risk_pct=st.decimals(min_value=D("0.003"), max_value=D("0.2"), places=6),
    trail=st.booleans(),
    path=st.lists(st.decimals(min_value=D("-0.03"), max_value=D("0.03"), places=6), min_size=1, max_size=8),
)
def test_paper_fills_stops_targets_and_trails_are_on_the_grid(
    tmp_path_factory: object,
    symbol: str,
    direction: Direction,
    entry: D,
    risk_pct: D,
    trail: bool,
    path: list[D],
) -> None:
    import asyncio

    tmp = tmp_path_factory.mktemp("pf")  # type: ignore[attr-defined]
    pf = load(tmp)
    tick = TICKS[symbol]
    d = 1 if direction is Direction.LONG else -1
    stop = entry * (1 - d * risk_pct)
    target = entry * (1 + d * 2 * risk_pct)
    trail_d = entry * risk_pct if trail else None
    s = Signal(
        "s1",
        symbol,
        "t",
        direction,
        entry,
        stop,
        target,
        0.9,
        "t",
        T0,
        trailing_distance=trail_d,
        quantity=D(3),
    )
    out = asyncio.run(pf.submit([s], T0))[0]
    if out.action == "skipped":  # a level within a tick of the entry collapses on the grid
        assert "price grid" in out.reason and entry * risk_pct < 3 * tick, out.reason
        return
    assert out.action == "opened" and out.fill is not None
    fill = out.fill
    model = pf.costs.fill_price(direction.entry_side, entry)
    assert on(fill.price, tick) and (fill.price >= model if fill.side is Side.BUY else fill.price <= model)
    assert fill.price - model < tick if fill.side is Side.BUY else model - fill.price < tick
    pos = next(iter(pf.ledger.positions.values()))
    assert on(pos.stop_loss, tick) and on(pos.take_profit, tick) and on(pos.trailing_distance, tick)
    assert pos.stop_loss is not None and d * (stop - pos.stop_loss) >= 0  # never tighter than asked
    assert abs(stop - pos.stop_loss) < tick
    row = pf.store.open_positions("paper", "capital")[0]  # what positions.csv and the reports read
    assert on(row.avg_price, tick) and on(row.stop_loss, tick) and on(row.take_profit, tick)
    px = entry
    for i, r in enumerate(path):  # bars move: the trail ratchets, a level may be hit
        px = px * (1 + r)
        hi, lo = max(px, px * (1 + abs(r) / 2)), min(px, px * (1 - abs(r) / 2))
        report = asyncio.run(pf.on_prices({symbol: PriceBar(px, hi, lo, px)}, T0 + timedelta(days=i + 1)))
        for p in pf.ledger.positions.values():
            assert on(p.stop_loss, tick), p.stop_loss
        if report.closed:
            break
    for f in [*pf.run_fills, *pf.store.fills(mode="paper")]:  # entry and any exit fill
        assert on(f.price, tick), f


async def test_instruments_without_known_rules_are_unchanged(tmp_path: Path) -> None:
    pf = load(tmp_path)
    entry = D("123.456789")
    s = Signal(
        "s2", "XYZ", "t", Direction.LONG, entry, D("120.123456"), D("130.987654"), 0.9, "t", T0, quantity=D(1)
    )
    out = (await pf.submit([s], T0))[0]
    assert out.fill is not None and out.fill.price == pf.costs.fill_price(Side.BUY, entry)
    pos = next(iter(pf.ledger.positions.values()))
    assert (pos.stop_loss, pos.take_profit) == (D("120.123456"), D("130.987654"))


async def test_levels_that_collapse_on_the_grid_are_skipped_not_crashed(tmp_path: Path) -> None:
    pf = load(tmp_path)
    s = Signal(
        "s3",
        "US500",
        "t",
        Direction.LONG,
        D("5000.02"),
        D("5000.01"),
        D("5000.04"),
        0.9,
        "t",
        T0,
        quantity=D(1),
    )
    out = (await pf.submit([s], T0))[0]
    assert out.action == "skipped" and "0.1 price grid" in out.reason
    assert pf.ledger.positions == {}


# ----------------------------------------------------------- sizes on the broker's size grid (review 2)
RULE_TICKS = [D("0.5"), D("0.25"), D("0.1"), D("0.01"), D("0.001"), D("0.0001"), D("0.00001")]
RULE_STEPS = [D("100"), D("10"), D("1"), D("0.5"), D("0.1"), D("0.01"), D("0.001")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tick=st.sampled_from(RULE_TICKS),
    step=st.sampled_from(RULE_STEPS),
    min_steps=st.integers(min_value=1, max_value=5),
    direction=st.sampled_from([Direction.LONG, Direction.SHORT]),
    entry=st.decimals(min_value=D("0.5"), max_value=D("70000"), places=6),
    quantity=st.decimals(min_value=D("0.0001"), max_value=D("5000"), places=4),
    marks=st.lists(st.decimals(min_value=D("-0.02"), max_value=D("0.02"), places=6), min_size=1, max_size=4),
)
def test_paper_sizes_floor_to_the_size_step_and_refuse_below_the_minimum(
    tmp_path_factory: object,
    tick: D,
    step: D,
    min_steps: int,
    direction: Direction,
    entry: D,
    quantity: D,
    marks: list[D],
) -> None:
    """Any instrument's rules: the booked size is the signal's floored to the step (>= the minimum),
    or the signal is refused naming the minimum; every stored price, fill and mark is on the tick."""
    import asyncio

    from joe.core.reports import InstrumentRules

    assume(entry >= 10 * tick)  # a price a few ticks wide has no room for a stop and a target
    quantity = max(min(quantity, (D(100000) / entry).quantize(D("0.0001"))), D("0.0001"))  # buying power
    tmp = tmp_path_factory.mktemp("pf")  # type: ignore[attr-defined]
    store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
    pf = PaperPortfolio.load(store, NullAudit(), ExecutionConfig(), broker="capital")
    min_size = step * min_steps
    pf.set_rules({"XAU": InstrumentRules("XAU", tick, min_size, step)})
    d = 1 if direction is Direction.LONG else -1
    gap = max(entry * D("0.05"), 4 * tick)
    s = Signal(
        "s1",
        "XAU",
        "t",
        direction,
        entry,
        entry - d * gap,
        entry + d * 2 * gap,
        0.9,
        "t",
        T0,
        quantity=quantity,
    )
    out = asyncio.run(pf.submit([s], T0))[0]
    floored = (quantity / step).to_integral_value(rounding="ROUND_DOWN") * step
    if floored < min_size:
        assert (
            out.action == "skipped"
            and "minimum deal size" in out.reason
            and f"{min_size.normalize():f}" in out.reason
        )
        assert pf.ledger.positions == {} and pf.store.fills(mode="paper") == []
        return
    assert out.action == "opened", out.reason
    for i, r in enumerate(marks):
        pf.mark({"XAU": entry * (1 + r)}, T0 + timedelta(hours=i + 1))
    row = pf.store.open_positions("paper", "capital")[0]  # what positions.csv and the report read
    assert abs(row.quantity) == floored and abs(row.quantity) % step == 0
    pos = next(iter(pf.ledger.positions.values()))
    for price in (row.avg_price, row.stop_loss, row.take_profit, pos.mark):
        assert price is not None and price % tick == 0, (price, tick)
    for f in pf.store.fills(mode="paper"):
        assert f.price % tick == 0 and f.quantity % step == 0 and f.quantity >= min_size, f
    shown = asyncio.run(pf.positions())[0]
    assert shown.market_price is not None and shown.market_price % tick == 0


def test_paper_rules_come_only_from_what_a_broker_states() -> None:
    """`joe run` and the backtest give the paper book the broker's grids: tick, size step and
    minimum where stated; a Capital.com instrument without dealing rules keeps its tick only;
    an instrument from a file or Yahoo gets none (its default tick is nobody's rule)."""
    from joe.core.models import Instrument
    from joe.core.reports import InstrumentRules
    from joe.runtime.stages import paper_rules

    fx = Instrument(
        "USDJPY", tick_size=D("0.001"), lot_size=D(100), min_size=D(100), broker_ids={"capital": "USDJPY"}
    )
    bare = Instrument("GOLD", tick_size=D("0.01"), broker_ids={"capital": "GOLD"})
    csv = Instrument("AAPL")
    assert paper_rules({i.symbol: i for i in (fx, bare, csv)}) == {
        "USDJPY": InstrumentRules("USDJPY", D("0.001"), D(100), D(100)),
        "GOLD": InstrumentRules("GOLD", D("0.01"), D(0), D(0)),
    }
