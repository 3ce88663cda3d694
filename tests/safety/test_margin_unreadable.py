"""A margin reading that cannot be trusted is never OK (review r1119 finding 5): equity missing, not a
number, zero or negative, or a cushion / excess liquidity that is garbage on the wire gives HALT with
an alert saying "margin unreadable" — never OK, never an exception. Unit cases, a property over any
account numbers, and a blown account at both simulators read through the broker's real client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.audit.log import tail
from joe.config.schema import MarginConfig
from joe.core.models import AccountInfo
from joe.runtime.daemon_live import margin_hook
from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.guards import pre_run_checks
from joe.safety.margin_monitor import MARGIN_KEY, MarginLevel, MarginMonitor, MarginReading
from joe.safety.trading_state import TradingState

from .simdesk import KINDS, live_desk

D = Decimal


def _acct(equity: str, available: str = "0", excess: str | None = None, **extra: str) -> AccountInfo:
    return AccountInfo(
        "acc", "USD", D(equity), D(equity), D(available),
        excess_liquidity=None if excess is None else D(excess), extra=extra,
    )  # fmt: skip


GARBAGE = {
    "capital negative equity": ("capital", _acct("-5000", "0")),
    "capital zero equity": ("capital", _acct("0", "0")),
    "capital NaN equity": ("capital", _acct("NaN", "100")),
    "capital infinite equity": ("capital", _acct("Infinity", "100")),
    "capital NaN available": ("capital", _acct("100000", "NaN")),
    "ibkr NaN Cushion": ("ibkr", _acct("100000", excess="90000", Cushion="NaN")),
    "ibkr garbage Cushion": ("ibkr", _acct("100000", excess="90000", Cushion="abc")),
    "ibkr NaN NetLiquidation (mapped to 0)": ("ibkr", _acct("0", excess="0", NetLiquidation="NaN")),
    "ibkr Infinity ExcessLiquidity": ("ibkr", _acct("100000", excess="0", ExcessLiquidity="Infinity")),
    "not an account": ("ibkr", None),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_an_unreadable_or_blown_account_halts_with_an_alert(ctx: SafetyContext, name: str) -> None:
    broker, account = GARBAGE[name]
    reading = MarginReading.from_account(broker, account)
    assert reading.unreadable, name
    assert MarginMonitor(MarginConfig(), ctx).check(reading) is MarginLevel.HALT
    rec = ctx.states.current()
    assert rec.state is TradingState.HALTED and rec.by == f"margin:{broker}"
    assert rec.reason.startswith("margin unreadable")
    (alert,) = [a for a in ctx.alerts.pending if a.title == f"Margin halt: {broker}"]
    assert "margin unreadable" in alert.body
    assert ctx.store.get_state(MARGIN_KEY)["unreadable"] == reading.unreadable
    audit = tail(ctx.data_dir / "audit", 100)
    levels = [r["payload"]["level"] for r in audit if r["event"] == "safety.margin"]
    assert levels == ["halt"]


_num = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
    st.sampled_from([D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"), D(0)]),
)
_raw = st.one_of(st.none(), st.sampled_from(["", "NaN", "nan", "inf", "-1", "0", "0.5", "1", "x", "1e400"]))


@settings(max_examples=300, deadline=None)
@given(equity=_num, available=_num, excess=st.one_of(st.none(), _num), cushion=_raw, net=_raw)
def test_any_account_numbers_give_a_verdict_and_ok_only_when_readable_and_healthy(
    equity: D, available: D, excess: D | None, cushion: str | None, net: str | None
) -> None:
    extra = {k: v for k, v in (("Cushion", cushion), ("NetLiquidation", net)) if v is not None}
    a = AccountInfo("a", "USD", equity, equity, available, excess_liquidity=excess, extra=extra)
    cfg = MarginConfig()
    reading = MarginReading.from_account("ibkr", a)  # never raises
    level = MarginMonitor(cfg, None).level(reading)  # type: ignore[arg-type]
    if level is MarginLevel.OK:
        assert reading.unreadable is None and reading.equity is not None and reading.equity > 0
        c = reading.cushion
        assert c is not None and c.is_finite() and c >= cfg.warn_cushion
    if reading.unreadable is not None:
        assert level is MarginLevel.HALT


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_blown_account_at_the_broker_halts_the_daemon_and_the_live_run(
    kind: str, ctx: SafetyContext
) -> None:
    async with live_desk(kind, ctx) as desk:
        desk.hold_prices()
        poll = margin_hook(ctx, MarginConfig(), kind)  # what the daemon calls every margin_check_s
        poll(await desk.client.account())
        assert ctx.store.get_state(MARGIN_KEY)["level"] == "ok"
        await desk.set_cash(D(-5000))  # negative equity at the broker (a gap through every stop)
        poll(await desk.client.account())
        margin = ctx.store.get_state(MARGIN_KEY)
        assert margin["level"] == "halt" and "<= 0" in margin["unreadable"]
        assert ctx.states.current().state is TradingState.HALTED and entry_allowed(ctx)[0] is False
        checks = await pre_run_checks(
            ctx, mode="live", broker=kind, read_account=desk.client.account,
            margin=MarginMonitor(MarginConfig(), ctx), verify_chain=False,
        )  # fmt: skip
        assert not checks.allowed
        assert any("margin unreadable" in r for r in checks.reasons), checks.reasons
