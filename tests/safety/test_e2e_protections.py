"""The protections end to end at both simulators: positions stopped out AT THE BROKER (the price moved
through the resting stop, the broker filled it), the fills booked by the `OrderManager`, and the
protections judging those live trades (`joe.safety.live_trades`, read by `protection_locks` as the
live run's gate and `joe status` do): the stop-loss streak guard and the drawdown lock lock
everything, the cooldown and the low-profit lock lock the symbol; the `RiskGate`'s protection rule
then refuses entries with the policy and its reason. Before: a live account's trades were invisible
to the protections (they read the paper book's position rows only), so none of them ever locked."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from joe.config.schema import ProtectionsConfig, RiskConfig
from joe.safety.control import SafetyContext
from joe.safety.live_trades import live_closed_trades
from joe.safety.paper_book import protection_locks
from joe.safety.protections.policies import ALL
from joe.safety.risk_gate import GateBook, ProposedOrder, RiskGate
from joe.safety.rules.protection import ProtectionLocks

from .simdesk import SYMBOL, Desk, live_desk, until

D = Decimal


async def _stopped_out(desk: Desk, sig: str) -> None:
    """Open a position, then move the market through its stop: the broker fills the stop."""
    legs = await desk.open_position(sig)
    sym = legs[0].symbol
    assert legs[1].stop_price is not None
    desk.set_price(sym, legs[1].stop_price * D("0.99"))
    await until(lambda: desk.om.position_of(sig) == 0, f"{sig}: the stop to fill at the broker")
    assert desk.positions().get(sym, D(0)) == 0
    desk.set_price(sym, legs[1].stop_price / D("0.95"))  # back where it was, for the next entry


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
async def test_stop_outs_at_the_broker_lock_entries(kind: str, ctx: SafetyContext) -> None:
    sym = SYMBOL[kind]
    cfg = ProtectionsConfig(max_drawdown_pct=D("0.01"))  # any realised loss is a drawdown here
    async with live_desk(kind, ctx) as desk:
        for i in range(3):
            await _stopped_out(desk, f"pr-{i}")

    trades = live_closed_trades(ctx.store, "live")
    assert [t.symbol for t in trades] == [sym] * 3
    assert all(t.stopped_out and t.pnl < 0 and t.notional > 0 for t in trades), trades

    # The locks as of the last stop-out, on the clock its time was stamped on (the broker's: the simulator
    # runs on the suite's market clock, whatever this host's date).
    now = trades[-1].closed_at
    locks = {(lk.policy, lk.scope): lk for lk in protection_locks(ctx.store, "live", now, cfg, D(100_000))}
    assert set(locks) == {
        ("stoploss_guard", ALL),
        ("cooldown", sym),
        ("low_profit", sym),
        ("max_drawdown_lock", ALL),
    }, locks
    assert "3 stop-outs" in locks[("stoploss_guard", ALL)].reason
    last = trades[-1].closed_at
    assert locks[("cooldown", sym)].until == last + timedelta(hours=cfg.cooldown_h)
    assert locks[("stoploss_guard", ALL)].until == last + timedelta(hours=cfg.stoploss_guard_lock_h)

    # The gate's protection rule refuses an entry on the symbol and on any other, naming the policy.
    gate = RiskGate(RiskConfig(), ctx.audit, rules=[ProtectionLocks()])
    book = GateBook(now=now, equity=D(100_000), positions=[], quotes={}, daily_bars=False,
                    locks=list(locks.values()))  # fmt: skip
    for symbol in (sym, "OTHER"):
        denial = gate.check(ProposedOrder("next", symbol, D(1), D(100)), book)
        assert denial is not None and denial.rule == "protection", denial
        assert "locks" in denial.message

    # With the global locks off, only the stopped-out symbol stays locked (cooldown, low profit).
    only_symbol = ProtectionsConfig(stoploss_guard_trades=0, max_drawdown_pct=D(100))
    scopes = {lk.scope for lk in protection_locks(ctx.store, "live", now, only_symbol, D(100_000))}
    assert scopes == {sym}
    # A day later the cooldown has ended; the low-profit lock (a week) still holds the symbol.
    later = {lk.policy for lk in protection_locks(ctx.store, "live", now + timedelta(hours=25), only_symbol,
                                                   D(100_000))}  # fmt: skip
    assert later == {"low_profit"}
