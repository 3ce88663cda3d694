"""`LivePortfolio` rules (bracket intents on increments, reconcile before trading, rollout caps) and
`ShadowPortfolio` never transmitting — unit level, against the fake venue of tests/execution.
The end-to-end runs against both simulators are in tests/runtime/test_live_runs.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.fake_venue import FakeVenue
from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, OrderLeg, OrderType, Quote, Side, Signal
from joe.core.reports import InstrumentRules
from joe.execution.increments import check_intent
from joe.execution.order_manager import OrderManager
from joe.portfolio.intents import NotTradable, SizeCap, bracket_for
from joe.portfolio.live import LivePortfolio
from joe.portfolio.paper import PaperPortfolio
from joe.portfolio.rollout import Rollout
from joe.portfolio.shadow import ShadowPortfolio
from joe.store import Store, open_store

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'joe.db'}", data_dir=tmp_path)
    yield s
    s.close()


def signal(sid: str = "s1", *, qty: str = "10", long: bool = True, entry: str = "100") -> Signal:
    e = Decimal(entry)
    stop, target = (
        (e * Decimal("0.95"), e * Decimal("1.1")) if long else (e * Decimal("1.05"), e * Decimal("0.9"))
    )
    return Signal(
        sid, "AAPL", "trend", Direction.LONG if long else Direction.SHORT, e, stop, target, 0.7, "test", T0,
        quantity=Decimal(qty),
    )  # fmt: skip


# ------------------------------------------------------------------ bracket intents
ticks = st.sampled_from(["0.01", "0.05", "0.25", "1"]).map(Decimal)
steps = st.sampled_from(["1", "0.1", "0.01", "5"]).map(Decimal)


@settings(max_examples=200, deadline=None)
@given(
    tick=ticks,
    step=steps,
    qty=st.decimals("0.5", "5000", places=3),
    entry=st.decimals("1", "5000", places=4),
    long=st.booleans(),
    fraction=st.sampled_from(["1", "0.25"]).map(Decimal),
)
def test_bracket_is_on_the_increments_and_never_riskier(
    tick: Decimal, step: Decimal, qty: Decimal, entry: Decimal, long: bool, fraction: Decimal
) -> None:
    rules = InstrumentRules("AAPL", tick, step, step)
    s = signal(qty=str(qty), long=long, entry=str(entry))
    try:
        legs = bracket_for(s, rules, SizeCap(fraction))
    except NotTradable as exc:  # only when the size rounds below one increment, or a level to zero
        assert qty * fraction < step or "tick grid" in str(exc)
        return
    entry_i, stop_i, target_i = legs
    for leg in legs:
        check_intent(leg, rules)  # the broker's rules hold for every leg
    assert [leg.leg for leg in legs] == [OrderLeg.ENTRY, OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT]
    assert entry_i.quantity <= qty * fraction and entry_i.quantity == stop_i.quantity == target_i.quantity
    assert stop_i.reduce_only and target_i.reduce_only and not entry_i.reduce_only
    assert stop_i.order_type is OrderType.STOP and target_i.order_type is OrderType.LIMIT
    assert stop_i.side is entry_i.side.opposite
    assert stop_i.stop_price is not None
    if long:  # never tighter than asked: a long's stop rounds down, its target up
        assert stop_i.stop_price <= s.stop_loss and target_i.limit_price >= s.take_profit  # type: ignore[operator]
    else:
        assert stop_i.stop_price >= s.stop_loss and target_i.limit_price <= s.take_profit  # type: ignore[operator]
    assert len({leg.client_order_id for leg in legs}) == 3
    assert [leg.client_order_id for leg in bracket_for(s, rules, SizeCap(fraction))] == [
        leg.client_order_id for leg in legs
    ]  # deterministic: a rerun is the same order


def test_max_notional_caps_the_size() -> None:
    rules = InstrumentRules("AAPL", Decimal("0.01"), Decimal(1), Decimal(1))
    legs = bracket_for(signal(qty="1000"), rules, SizeCap(Decimal("0.25"), Decimal(5000)))
    assert legs[0].quantity == 50  # 5000 / 100, below 0.25 * 1000


# ------------------------------------------------------------------ live: reconcile, then trade
def live(store: Store, venue: FakeVenue) -> tuple[LivePortfolio, NullAudit]:
    audit = NullAudit()
    om = OrderManager(venue, store, audit, mode="live")  # type: ignore[arg-type]
    return LivePortfolio(om, store, audit, fill_wait_s=0.2), audit


async def _run(coro: Any) -> Any:
    return await coro


def test_entries_refused_when_the_broker_position_differs_from_joes_fills(store: Store) -> None:
    async def go() -> None:
        venue = FakeVenue()
        first, _ = live(store, venue)
        assert (await first.start()).explained
        out = await first.submit([signal("s0")], T0)
        venue.execute(out[0].client_order_id or "", Decimal(10))
        await venue.deliver(first.om)
        await first.om.stop()
        venue.net["AAPL"] = Decimal(3)  # the broker now says 3; Joe's fills explain 10
        pf, audit = live(store, venue)  # the next run
        rec = await pf.start()
        assert not rec.explained and any("AAPL" in f for f in rec.findings)
        sent = len(venue.orders)
        res = await pf.submit([signal("s1")], T0)
        assert res[0].action == "refused" and "AAPL" in res[0].reason
        assert len(venue.orders) == sent  # nothing new reached the venue
        assert "live.entries_refused" in [e for e, _, _ in audit.records]
        await pf.om.stop()

    asyncio.run(go())


def test_a_position_joe_did_not_open_is_recorded_as_external_and_entries_go_on(store: Store) -> None:
    async def go() -> None:
        venue = FakeVenue()
        venue.net["MSFT"] = Decimal(7)  # opened by hand: the Reconciler records it, never touches it
        pf, _ = live(store, venue)
        rec = await pf.start()
        assert rec.explained and any("MSFT" in n for n in rec.notes)
        assert (await pf.submit([signal()], T0))[0].action in ("sent", "opened")
        await pf.om.stop()

    asyncio.run(go())


def test_reconciled_entries_go_out_as_one_bracket_and_a_rerun_sends_nothing_new(store: Store) -> None:
    async def go() -> None:
        venue = FakeVenue()
        pf, _ = live(store, venue)
        assert (await pf.start()).explained
        out = await pf.submit([signal()], T0)
        assert out[0].action == "sent"  # the market entry works until the venue fills it
        assert len(venue.orders) == 3
        assert {v.intent.leg for v in venue.orders.values()} == {
            OrderLeg.ENTRY,
            OrderLeg.STOP_LOSS,
            OrderLeg.TAKE_PROFIT,
        }
        again = await pf.submit([signal()], T0)
        assert again[0].client_order_id == out[0].client_order_id and len(venue.orders) == 3
        await pf.om.stop()

    asyncio.run(go())


def test_before_start_nothing_is_sent(store: Store) -> None:
    async def go() -> None:
        venue = FakeVenue()
        pf, _ = live(store, venue)
        out = await pf.submit([signal()], T0)
        assert out[0].action == "refused" and venue.orders == {}

    asyncio.run(go())


# ------------------------------------------------------------------ rollout
def _filled_entry(store: Store, rollout: Rollout, sid: str, venue: FakeVenue | None = None) -> None:
    """One live entry sent through a `LivePortfolio` wired to `rollout` (as the live run wires it), filled."""

    at = venue or FakeVenue()

    async def go() -> None:
        pf, _ = live(store, at)
        pf.on_entry = rollout.record_entry
        await pf.start()
        out = await pf.submit([signal(sid)], T0)
        at.execute(out[0].client_order_id or "", Decimal(10))
        await at.deliver(pf.om)
        await pf.om.stop()

    asyncio.run(go())


# Caps below the rollout's floors (10 trades, 5 days) need the audited override (test_rollout_floors).
SMALL_CAPS_OVERRIDE = {"track_record_override": {"enabled": True, "reason": "small caps to test the count"}}


@pytest.mark.parametrize(
    "looser",
    [{"trades": 0}, {"days": 0}, {"size_fraction": "1"}, {"max_notional": "10000000"},
     {"trades": 0, "days": 0, "size_fraction": "1", "max_notional": "10000000"}],  # the schema's upper bound
)  # fmt: skip
def test_rollout_floors_apply_unless_the_audited_override_says_otherwise(
    store: Store, looser: dict[str, object]
) -> None:
    """Review r1012 finding 5: `live.rollout` could be switched off from the yaml with no override."""
    from joe.core.events import NullAudit

    cfg = ExecutionConfig.model_validate({"live": {"rollout": looser}})
    audit = NullAudit()
    real = Rollout(cfg, store, real_money=True, broker="fake", clock=lambda: T0, audit=audit)
    assert (real.cfg.trades, real.cfg.days) == (10, 5)
    assert real.cap() == SizeCap(Decimal("0.25"), Decimal(5000))
    assert "the floors apply" in " ".join(real.lines())
    assert [k for k, _p, _ in audit.records] == ["rollout.floored"]
    over = ExecutionConfig.model_validate({"live": {"rollout": looser, **SMALL_CAPS_OVERRIDE}})
    audit = NullAudit()
    chosen = Rollout(over, store, real_money=True, broker="fake", clock=lambda: T0, audit=audit)
    assert chosen.cfg == over.live.rollout and "OVERRIDDEN" in " ".join(chosen.lines())
    assert [k for k, _p, _ in audit.records] == ["mode.override"]
    stricter = ExecutionConfig.model_validate({"live": {"rollout": {"trades": 20, "size_fraction": "0.1"}}})
    assert Rollout(stricter, store, real_money=True, broker="fake").cfg == stricter.live.rollout


def test_rollout_caps_only_real_money_and_count_live_entries(store: Store) -> None:
    live = {"rollout": {"trades": 1, "days": 2}, **SMALL_CAPS_OVERRIDE}
    cfg = ExecutionConfig.model_validate({"live": live})
    demo = Rollout(cfg, store, real_money=False, broker="fake", clock=lambda: T0)
    assert demo.cap() is None and "real-money account only" in demo.lines()[0]
    real = Rollout(cfg, store, real_money=True, broker="fake", clock=lambda: T0)
    assert real.cap() == SizeCap(Decimal("0.25"), Decimal(5000)) and "ACTIVE" in real.lines()[0]

    _filled_entry(store, real, "s1")
    assert real.progress()[0] == 1
    assert real.active()  # one trade done, but still inside the first two days
    later = Rollout(
        cfg, store, real_money=True, broker="fake", clock=lambda: datetime.now(UTC) + timedelta(days=3)
    )
    assert later.cap() is None and "done" in later.lines()[0]
    assert later.state() | {"days": 3} == {
        "real_money": True, "active": False, "trades": 1, "days": 3, "trades_cap": 1, "days_cap": 2,
        "size_fraction": "0.25", "max_notional": "5000",
    }  # fmt: skip


def test_demo_trades_do_not_advance_the_real_money_rollout(store: Store) -> None:
    """Before: the rollout counted every filled live entry at the broker, demo-account ones included,
    so trades on a demo account lifted the caps of a real-money account. Now only entries sent to a
    real-money account count; demo and untagged entries never shorten the caps."""
    live = {"rollout": {"trades": 2, "days": 0}, **SMALL_CAPS_OVERRIDE}
    cfg = ExecutionConfig.model_validate({"live": live})
    demo = Rollout(cfg, store, real_money=False, broker="fake", clock=lambda: T0)
    venue = FakeVenue()
    for sid in ("d1", "d2", "d3"):
        _filled_entry(store, demo, sid, venue)
    assert len([o for o in store.orders(mode="live") if o.intent.leg is OrderLeg.ENTRY]) == 3
    real = Rollout(cfg, store, real_money=True, broker="fake", clock=lambda: T0 + timedelta(days=10))
    assert real.progress() == (0, 0) and real.active()
    assert real.cap() == SizeCap(Decimal("0.25"), Decimal(5000))
    assert "so far 0 real-money live trade(s)" in real.lines()[0]
    _filled_entry(store, real, "r1", venue)
    assert real.progress()[0] == 1 and real.active()
    _filled_entry(store, real, "r2", venue)
    assert real.progress()[0] == 2 and not real.active() and real.cap() is None
    demo.record_entry(next(o.client_order_id for o in store.orders() if o.intent.signal_id == "r1"))
    assert real.progress()[0] == 2  # a rerun's tag never rewrites the first send's account


# ------------------------------------------------------------------ shadow
class QuoteSource:
    name = "quotes"

    async def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        return {s: Quote(s, T0, Decimal("99.9"), Decimal("100.1")) for s in symbols}


class NoSendVenue(FakeVenue):
    async def submit(self, intents: Any) -> Any:
        raise AssertionError("shadow must never transmit")


def test_shadow_fills_the_paper_book_at_the_live_mid_and_never_sends(store: Store, tmp_path: Path) -> None:
    async def go() -> None:
        venue = NoSendVenue()
        audit = NullAudit()
        book = PaperPortfolio.load(store, audit, ExecutionConfig(), broker="fake")
        shadow = ShadowPortfolio(venue, QuoteSource(), book, audit)  # type: ignore[arg-type]
        out = await shadow.submit([signal(entry="104")], T0)
        assert out[0].action == "opened" and out[0].fill is not None
        expected = book.costs.fill_price(Side.BUY, Decimal(100))  # the live mid plus the paper costs
        assert out[0].fill.price == expected and expected > Decimal(100)
        assert venue.orders == {} and venue.sent == []
        assert [e for e, _, _ in audit.records].count("shadow.intent") == 1
        assert shadow.intents[0].side == Side.BUY.value and shadow.intents[0].live_price == Decimal(100)

    asyncio.run(go())


def test_an_entry_whose_outcome_is_unknown_is_sent_never_rejected(store: Store) -> None:
    """Hostile review 2026-12-02: a submit that timed out after sending (OrderOutcomeUnknown: it may be at
    the broker, even filled) was reported "rejected" — an operator reading the report would place it
    again by hand. An unacknowledged entry (IBKR dropping the placeOrder) read "entry working at the
    broker" although the broker never said it held it."""

    async def go() -> None:
        venue = FakeVenue(unknown_after_send=True)
        pf, _ = live(store, venue)
        assert (await pf.start()).explained
        real = venue.submit

        async def then_unreadable(intents: Any) -> Any:  # the status endpoint fails from the send on
            venue.status_unavailable = True
            return await real(intents)

        venue.submit = then_unreadable  # type: ignore[method-assign]
        out = (await pf.submit([signal()], T0))[0]
        assert out.action == "sent" and "not acknowledged by the broker" in out.reason, out
        assert "never resent" in out.reason and out.client_order_id in venue.sent
        again = await pf.submit([signal()], T0)  # a rerun sends nothing new for it
        assert again[0].client_order_id == out.client_order_id and len(venue.orders) == 3
        await pf.om.stop()

    asyncio.run(go())


def test_an_acknowledged_entry_still_working_says_so(store: Store) -> None:
    async def go() -> None:
        venue = FakeVenue()
        pf, _ = live(store, venue)
        assert (await pf.start()).explained

        async def stream() -> None:  # the broker's status reports arrive while the run waits for a fill
            while True:
                await venue.deliver(pf.om)
                await asyncio.sleep(0.01)

        pump = asyncio.create_task(stream())
        out = (await pf.submit([signal()], T0))[0]
        pump.cancel()
        assert (out.action, out.reason) == ("sent", "entry working at the broker")
        await pf.om.stop()

    asyncio.run(go())
