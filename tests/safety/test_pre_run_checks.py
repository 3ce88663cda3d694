"""`joe.safety.guards.pre_run_checks`: allowed/denied with every reason — kill file, trading state, the
audit chain (denies live/shadow, warns in paper), the margin poll (fail closed in live), the breaker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from joe.audit.log import tail
from joe.config.schema import BreakerConfig, MarginConfig
from joe.core.models import AccountInfo
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.guards import pre_run_checks
from joe.safety.kill_switch import KillLevel, write_kill_file
from joe.safety.margin_monitor import MarginMonitor
from joe.safety.trading_state import TradingState

D = Decimal


def _acct(available: str) -> AccountInfo:
    return AccountInfo("U1", "USD", equity=D(100000), cash=D(0), available_funds=D(available))


async def _read_ok() -> AccountInfo:
    return _acct("50000")


async def test_all_clear_is_allowed_and_audited(ctx: SafetyContext) -> None:
    mon = MarginMonitor(MarginConfig(), ctx)
    r = await pre_run_checks(ctx, mode="live", broker="ibkr", read_account=_read_ok, margin=mon)
    assert r.allowed and r.reasons == []
    assert [c.name for c in r.checks] == ["kill_file", "trading_state", "audit_chain", "margin", "breaker"]
    assert all(c.outcome == "pass" for c in r.checks)
    rec = [x for x in tail(ctx.data_dir / "audit", 20) if x["event"] == "safety.pre_run_checks"][-1]
    assert rec["payload"]["allowed"] is True


async def test_kill_file_denies_and_moves_the_state(ctx: SafetyContext) -> None:
    write_kill_file(ctx.data_dir, KillLevel.REDUCE, "news at 14:00")
    r = await pre_run_checks(ctx, mode="live")
    assert not r.allowed
    assert any(x.startswith("kill_file:") and "news at 14:00" in x for x in r.reasons)
    assert any(x.startswith("trading_state: trading is reducing") for x in r.reasons)
    assert ctx.states.current().state is TradingState.REDUCING


async def test_tripped_breaker_denies(ctx: SafetyContext) -> None:
    CircuitBreaker("capital", BreakerConfig(max_server_errors=1), ctx).record(
        BreakerEvent.SERVER_ERROR, "502"
    )
    r = await pre_run_checks(ctx, mode="shadow", broker="capital")
    assert not r.allowed and any(x.startswith("breaker: circuit breaker tripped (capital") for x in r.reasons)


@pytest.mark.parametrize(
    ("available", "allowed", "state"), [("20000", True, "active"), ("2000", False, "halted")]
)
async def test_margin_poll(ctx: SafetyContext, available: str, allowed: bool, state: str) -> None:
    async def read() -> AccountInfo:
        return _acct(available)

    r = await pre_run_checks(
        ctx, mode="live", broker="ibkr", read_account=read, margin=MarginMonitor(MarginConfig(), ctx)
    )
    assert r.allowed is allowed
    assert ctx.states.current().state.value == state
    if allowed:
        assert any(w.startswith("margin: margin warn") for w in r.warnings)
    else:
        assert any(x.startswith("margin: margin halt") for x in r.reasons)
        assert any(x.startswith("trading_state: trading is halted") for x in r.reasons)


@pytest.mark.parametrize(("mode", "allowed"), [("live", False), ("paper", True)])
async def test_account_read_failure_fails_closed_in_live_only(
    ctx: SafetyContext, mode: str, allowed: bool
) -> None:
    async def broken() -> AccountInfo:
        raise ConnectionError("gateway down")

    r = await pre_run_checks(
        ctx, mode=mode, broker="ibkr", read_account=broken, margin=MarginMonitor(MarginConfig(), ctx)
    )
    assert r.allowed is allowed


@pytest.mark.parametrize(("mode", "allowed"), [("live", False), ("shadow", False), ("paper", True)])
async def test_broken_audit_chain(ctx: SafetyContext, mode: str, allowed: bool) -> None:
    for i in range(3):
        ctx.audit.record("test.event", {"i": i})
    [f] = sorted((ctx.data_dir / "audit").glob("*.jsonl"))
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:-1]) + "\n")  # the tail deleted: the store anchor says more
    r = await pre_run_checks(ctx, mode=mode)
    assert r.allowed is allowed
    where = r.reasons if not allowed else r.warnings
    assert any(x.startswith("audit_chain:") for x in where)


async def test_a_crashing_check_denies(ctx: SafetyContext) -> None:
    class Broken(MarginMonitor):
        def check(self, r):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

    r = await pre_run_checks(ctx, mode="paper", read_account=_read_ok, margin=Broken(MarginConfig(), ctx))
    assert not r.allowed and any("check failed: RuntimeError: bug" in x for x in r.reasons)
