"""The margin monitor end to end at both simulators: the account's margin use rises at the broker
(its equity falls while the positions' margin stays), each reading comes through the broker's real
client (IBKR account values over the TWS protocol, Capital.com ``GET /accounts``) into the
`MarginMonitor` as the daemon polls it (`joe.runtime.daemon_live.margin_hook`) and as a live run's
pre-entry check does (`pre_run_checks`). Below each cushion: the alert, then REDUCING, then HALTED;
in REDUCING and HALTED no entry passes, a resting entry is cancelled at the broker, the protective
stop stays there and an exit still goes through (the simulator's book is the truth)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from joe.audit.log import tail
from joe.config.schema import MarginConfig
from joe.core.order import OrderState
from joe.runtime.daemon_live import margin_hook
from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.guards import pre_run_checks
from joe.safety.margin_monitor import MARGIN_KEY, MarginMonitor
from joe.safety.trading_state import TradingState

from .simdesk import KINDS, SYMBOL, Desk, live_desk, until

D = Decimal


async def _reading(desk: Desk) -> tuple[D, D]:
    a = await desk.client.account()
    excess = a.excess_liquidity if a.excess_liquidity is not None else a.available_funds
    return a.equity, excess


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
async def test_margin_use_rising_at_the_broker_warns_then_reduces_then_halts(
    kind: str, ctx: SafetyContext
) -> None:
    async with live_desk(kind, ctx) as desk:
        held = await desk.open_position("m-held", "10" if kind == "ibkr" else "1")
        resting = await desk.rest_entry("m-rest")
        desk.hold_prices()  # the cushion moves with the deposit only
        poll = margin_hook(ctx, MarginConfig(), kind)  # what the daemon calls every margin_check_s

        async def poll_now() -> str:
            poll(await desk.client.account())
            return str(ctx.store.get_state(MARGIN_KEY)["level"])

        assert await poll_now() == "ok"
        equity, excess = await _reading(desk)
        cash_now = desk.cash()  # moves equity one for one (the positions' value is unchanged)
        margin_used = equity - excess
        assert margin_used > 0, "the open position must use margin at the broker"

        def cash_for(cushion: str) -> D:
            target = margin_used / (1 - D(cushion))  # the equity at which excess/equity == cushion
            return cash_now + (target - equity)

        # Below warn (0.25): an alert only; entries still allowed.
        await desk.set_cash(cash_for("0.20"))
        assert await poll_now() == "warn"
        assert ctx.states.current().state is TradingState.ACTIVE
        assert any(a.title == f"Margin warn: {kind}" for a in ctx.alerts.pending)

        # Below reduce (0.15): REDUCING — exits only: the resting entry is cancelled at the broker.
        await desk.set_cash(cash_for("0.12"))
        assert await poll_now() == "reduce"
        rec = ctx.states.current()
        assert rec.state is TradingState.REDUCING and rec.by == f"margin:{kind}"
        await desk.safety.enforcer.drain()  # type: ignore[union-attr]
        await until(lambda: desk.state(resting[0].client_order_id) is OrderState.CANCELLED, "entry cancelled")
        assert desk.resting_entries() == []
        assert entry_allowed(ctx)[0] is False

        # Below halt (0.08): HALTED, the pre-entry check of a live run denies with the margin reason.
        await desk.set_cash(cash_for("0.05"))
        checks = await pre_run_checks(
            ctx, mode="live", broker=kind, read_account=desk.client.account,
            margin=MarginMonitor(MarginConfig(), ctx), verify_chain=False,
        )  # fmt: skip
        assert not checks.allowed
        assert any(r.startswith("margin: margin halt") for r in checks.reasons), checks.reasons
        rec = ctx.states.current()
        assert rec.state is TradingState.HALTED and rec.by == f"margin:{kind}"
        titles = {a.title for a in ctx.alerts.pending}
        assert {f"Margin reduce: {kind}", f"Margin halt: {kind}", "Trading state: HALTED"} <= titles
        levels = [
            r["payload"]["level"] for r in tail(ctx.data_dir / "audit", 2000) if r["event"] == "safety.margin"
        ]
        assert levels == ["ok", "warn", "reduce", "halt"]  # every level change audited, once

        # The position keeps its stop at the broker, and an exit still goes through.
        sym = SYMBOL[kind]
        assert desk.stops(sym) and desk.stops(sym)[0][1] == held[1].stop_price
        await desk.om.exit("m-held")
        await until(lambda: desk.positions().get(sym, D(0)) == 0, "the exit to close the position")
        assert desk.om.position_of("m-held") == 0
