"""`PaperPortfolio` against a real store: entries, exits, persistence, idempotency, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Signal
from joe.core.order import OrderState
from joe.portfolio import PaperPortfolio, PriceBar
from joe.store import open_store

T0 = datetime(2018, 12, 31, tzinfo=UTC)


def sig(
    n: int,
    direction: Direction = Direction.LONG,
    entry: str = "100",
    qty: str = "10",
    symbol: str | None = None,
) -> Signal:
    e = D(entry)
    stop, target = (
        (e * D("0.95"), e * D("1.10")) if direction is Direction.LONG else (e * D("1.05"), e * D("0.90"))
    )
    return Signal(
        f"s{n}", symbol or f"X{n}", "test", direction, e, stop, target, 0.9, "test", T0, quantity=D(qty)
    )


def load(tmp: Path, cfg: ExecutionConfig | None = None) -> tuple[PaperPortfolio, NullAudit]:
    audit = NullAudit()
    store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
    return PaperPortfolio.load(store, audit, cfg or ExecutionConfig()), audit


async def test_entries_keep_equity_at_start_minus_commissions(tmp_path: Path) -> None:
    pf, audit = load(tmp_path)
    out = await pf.submit([sig(1), sig(2, Direction.SHORT, "50", "20")], T0)
    assert [o.action for o in out] == ["opened", "opened"]
    fees = sum((o.fill.commission for o in out if o.fill), D(0))
    acct = await pf.account()
    assert acct.equity == D(100_000) - fees
    # The short's proceeds are cash; its negative market value offsets them.
    assert (
        acct.cash
        == D(100_000)
        - sum(
            (
                o.fill.price * o.fill.quantity * (1 if o.fill.side.value == "BUY" else -1)
                for o in out
                if o.fill
            ),
            D(0),
        )
        - fees
    )
    events = [e for e, _, _ in audit.records]
    assert events.count("order.attempt") == 2 and events.count("order.fill") == 2
    # Reloading from the store gives the same book.
    again, _ = load(tmp_path)
    assert again.ledger.cash == pf.ledger.cash
    assert {p.symbol: p.quantity for p in await again.positions()} == {"X1": D(10), "X2": D(-20)}


async def test_same_signal_twice_opens_once(tmp_path: Path) -> None:
    pf, _ = load(tmp_path)
    assert (await pf.submit([sig(1)], T0))[0].action == "opened"
    pf2, _ = load(tmp_path)
    second = await pf2.submit([sig(1)], T0)
    assert second[0].action == "skipped"
    assert len(pf2.store.open_positions("paper")) == 1
    assert len(pf2.store.orders(mode="paper")) == 1


async def test_stop_exit_is_booked_and_persisted(tmp_path: Path) -> None:
    pf, audit = load(tmp_path)
    await pf.submit([sig(1)], T0)
    entry = pf.ledger.positions[next(iter(pf.ledger.positions))]
    report = await pf.on_prices({"X1": PriceBar(D(99), D(99), D(90), D(91))}, T0 + timedelta(days=1))
    assert [r[3] for r in report.closed] == ["stop loss"]
    assert not pf.ledger.positions
    closed = pf.store.closed_positions("paper")
    assert len(closed) == 1 and closed[0].exit_reason == "stop loss"
    expected = entry.quantity * (closed[0].exit_price - entry.entry_price) - entry.entry_commission
    assert closed[0].realized_pnl < expected  # the exit commission comes off too
    assert pf.ledger.realized_pnl == closed[0].realized_pnl
    exit_orders = [o for o in pf.store.orders(mode="paper") if o.intent.leg.value == "exit"]
    assert exit_orders and exit_orders[0].state is OrderState.FILLED
    assert "position.closed" in [e for e, _, _ in audit.records]
    # A replay of the same bar changes nothing.
    assert pf.last_bar_ts() == T0 + timedelta(days=1)


async def test_limits_and_buying_power(tmp_path: Path) -> None:
    cfg = ExecutionConfig.model_validate({"risk": {"max_positions": 2}, "paper": {"max_leverage": 1}})
    pf, _ = load(tmp_path, cfg)
    out = await pf.submit([sig(1, qty="600"), sig(2, qty="600"), sig(3, qty="1")], T0)
    assert [o.action for o in out] == ["opened", "rejected", "opened"]
    assert "buying power" in out[1].reason
    rejected = pf.store.load_order(out[1].client_order_id or "")
    assert rejected is not None and rejected.state is OrderState.REJECTED
    out = await pf.submit([sig(4, qty="1")], T0)
    assert out[0].action == "skipped" and "max positions" in out[0].reason


async def test_cash_account_refuses_shorts(tmp_path: Path) -> None:
    cfg = ExecutionConfig.model_validate({"paper": {"allow_margin": False}})
    pf, _ = load(tmp_path, cfg)
    out = await pf.submit([sig(1, Direction.SHORT)], T0)
    assert out[0].action == "rejected" and "margin" in out[0].reason
    assert pf.ledger.cash == D(100_000)


moves = st.lists(st.tuples(st.integers(1, 6), st.decimals(D("0.8"), D("1.2"), places=3)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 50)), min_size=1, max_size=6), moves)
async def test_accounting_holds_through_entries_and_exits(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[bool, int]], path: list[tuple[int, D]]
) -> None:
    tmp = tmp_path_factory.mktemp("pf")
    pf, _ = load(tmp)
    signals = [
        sig(i, Direction.SHORT if short else Direction.LONG, "100", str(q))
        for i, (short, q) in enumerate(entries)
    ]
    await pf.submit(signals, T0)
    for day, (k, factor) in enumerate(path, start=1):
        px = D(100) * factor
        bar = PriceBar(px, px * D("1.01"), px * D("0.99"), px)
        await pf.on_prices({f"X{k % len(entries)}": bar}, T0 + timedelta(days=day))
    lg = pf.ledger
    open_part = sum((p.unrealized_pnl - p.entry_commission for p in lg.positions.values()), D(0))
    assert lg.equity == lg.starting_cash + lg.realized_pnl + open_part
    assert lg.realized_pnl == sum((p.realized_pnl for p in pf.store.closed_positions("paper")), D(0))
    reloaded, _ = load(tmp)
    assert reloaded.ledger.cash == lg.cash and reloaded.ledger.realized_pnl == lg.realized_pnl
    assert set(reloaded.ledger.positions) == set(lg.positions)
