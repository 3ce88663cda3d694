"""Review r16, defects 1-3: every operator surface's FLATTEN reaches the Joe holding the broker (or is
refused loudly), and no flatten request outlives a resume or the HALT it came with.

The broker paths run against the IBKR simulator (the `ibkr` fixture of the halt-enforcer tests); the
simulator's book is the truth in the asserts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli.main import app
from joe.core.models import Side
from joe.core.order import OrderState as S
from joe.execution.order_manager import OrderManager
from joe.runtime.daemon import HEARTBEAT_KEY
from joe.safety.control import SafetyContext, kill, resume
from joe.safety.flatten_route import BROKER_FLATTEN_KEY, request_is_current
from joe.safety.halt_enforcer import HaltEnforcer
from joe.safety.kill_switch import KillLevel
from joe.safety.lock import InstanceLock
from joe.safety.paper_venue import PENDING_KEY
from joe.safety.trading_state import StateRecord, TradingState
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store

from .test_halt_cancels_entries import _bracket, _state, ibkr, until  # noqa: F401

PAPER_SHELL = ("TRADING_MODE", "JOE_BROKER", "IBKR_", "CAPITAL_")


def _paper_shell(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell without the daemon's EnvironmentFile: nothing says live, so it resolves PAPER."""
    import os

    for k in list(os.environ):
        if k.startswith(PAPER_SHELL):
            monkeypatch.delenv(k)
    (data_dir.parent / "execution.yaml").write_text(
        "version: 1\nlive:\n  enabled: true\nai:\n  enabled: false\n"
    )


def _ticking() -> Callable[[], datetime]:
    """A clock one second further at every reading (deterministic, never the wall clock)."""
    t = [datetime(2026, 3, 2, 14, 0, tzinfo=UTC)]

    def now() -> datetime:
        t[0] += timedelta(seconds=1)
        return t[0]

    return now


def _stored(data_dir: Path, key: str) -> object:
    store = open_store(data_dir=data_dir)
    try:
        return store.get_state(key)
    finally:
        store.close()


# --- 2: a leftover request never turns a later HALT into a flatten ------------------------------------


async def _hold_then_halt(
    sim: IBKRSimulator, om: OrderManager, ctx: SafetyContext, signal: str, why: str
) -> HaltEnforcer:
    """10 AAPL held under a working stop at the simulator, then a plain HALT (`why`) enforced once."""
    sim.set_price("AAPL", 100)
    held = _bracket(signal, "AAPL", Side.BUY, "10", D(95), D(110), None)
    await om.submit(held)
    await until(lambda: _state(om, held[1].client_order_id) is S.ACCEPTED, "the position's stop")
    kill(ctx, KillLevel.HALT, reason=why, by="breaker:ibkr")
    enforcer = HaltEnforcer(ctx, [om], poll_s=0.05)
    await enforcer.enforce()
    return enforcer


async def test_a_halt_after_resume_does_not_flatten(
    ibkr: tuple[IBKRSimulator, OrderManager],  # noqa: F811
    ctx: SafetyContext,
) -> None:
    sim, om = ibkr
    kill(ctx, KillLevel.FLATTEN, reason="flatten asked on monday", by="web:127.0.0.1")
    ctx.store.set_state(BROKER_FLATTEN_KEY, {"reason": "flatten asked on monday", "by": "web:127.0.0.1"})
    ctx.store.set_state(PENDING_KEY, {"reason": "flatten asked on monday", "by": "web:127.0.0.1"})
    resume(ctx, reason="looked at it, all good", by="cli:owner")
    assert ctx.store.get_state(BROKER_FLATTEN_KEY) is None and ctx.store.get_state(PENDING_KEY) is None
    enforcer = await _hold_then_halt(sim, om, ctx, "tue-open", "breaker: 3 rejects in a row")
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {"AAPL": 10}
    assert enforcer.flattened == []
    # the broker-side stop stays
    assert "STP" in [o.placed.order_type for o in sim.book.working()]


async def test_a_request_from_an_earlier_halt_is_dropped_not_carried_out(
    ibkr: tuple[IBKRSimulator, OrderManager],  # noqa: F811
    ctx: SafetyContext,
) -> None:
    """A request stored for one HALT (written past a resume, e.g. by an old process) is stale under the
    next HALT: the enforcer deletes it (audited) and closes nothing."""
    sim, om = ibkr
    ctx.clock = _ticking()
    kill(ctx, KillLevel.FLATTEN, reason="old flatten", by="cli:a")
    old_since = ctx.states.current().since
    resume(ctx, reason="looked at it, all good", by="cli:owner")
    ctx.store.set_state(BROKER_FLATTEN_KEY, {"reason": "old", "by": "cli:a", "halt_since": old_since})
    enforcer = await _hold_then_halt(sim, om, ctx, "w-open", "margin monitor")
    assert sim.book.positions["AAPL"].qty == 10 and enforcer.flattened == []
    assert ctx.store.get_state(BROKER_FLATTEN_KEY) is None


@pytest.mark.parametrize(
    ("state", "req", "current"),
    [
        (TradingState.HALTED, {"halt_since": "2026-01-01T00:00:00+00:00"}, True),
        (TradingState.HALTED, {"halt_since": "2025-12-31T00:00:00+00:00"}, False),
        (TradingState.ACTIVE, {"halt_since": "2026-01-01T00:00:00+00:00"}, False),
        (TradingState.HALTED, {"at": "2026-01-01T00:00:01+00:00"}, True),
        (TradingState.HALTED, {"at": "2025-12-31T23:59:59+00:00"}, False),
        (TradingState.REDUCING, {}, False),
    ],
)
def test_request_is_current_only_under_its_own_halt(
    state: TradingState, req: dict[str, str], current: bool
) -> None:
    rec = StateRecord(state, "x", "y", "2026-01-01T00:00:00+00:00")
    assert request_is_current(req, rec) is current


# --- 1: a surface that resolved PAPER beside a live Joe ------------------------------------------------


def test_cli_flatten_from_a_paper_shell_beside_a_running_joe(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    _paper_shell(data_dir, monkeypatch)
    # "the live daemon" (systemd, its own EnvironmentFile): another pid holds the data folder
    with InstanceLock.for_data_dir(data_dir) as lock:
        lock.path.write_text(f"{os.getpid() + 100000}\n")
        r = CliRunner().invoke(app, ["kill", "--flatten", "--reason", "get out now", "--json"])
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["mode"] == "paper" and out["trading_state"]["state"] == "halted"
    assert out["flatten"]["transmitted"] is False and out["flatten"]["pending"]["reason"] == "get out now"
    pending = _stored(data_dir, BROKER_FLATTEN_KEY)
    assert isinstance(pending, dict) and pending["asked_mode"] == "paper"
    assert "another Joe" in r.output and "resolved PAPER" in r.output


def test_cli_flatten_from_a_paper_shell_beside_a_paper_daemon_is_the_paper_flatten(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    _paper_shell(data_dir, monkeypatch)
    store = open_store(data_dir=data_dir)
    store.set_state(HEARTBEAT_KEY, {"pid": os.getpid() + 100000, "mode": "paper", "ts": "x"})
    store.close()
    lock = InstanceLock.for_data_dir(data_dir).acquire()
    lock.path.write_text(f"{os.getpid() + 100000}\n")  # the holder's pid as the daemon wrote it
    try:
        r = CliRunner().invoke(app, ["kill", "--flatten", "--reason", "get out now", "--json"])
    finally:
        lock.release()
    assert r.exit_code == 0, r.output
    assert _stored(data_dir, BROKER_FLATTEN_KEY) is None
    assert isinstance(_stored(data_dir, PENDING_KEY), dict)


def test_cli_flatten_from_a_paper_shell_with_live_positions_stored_refuses(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _paper_shell(data_dir, monkeypatch)
    store = open_store(data_dir=data_dir)
    store.open_position(mode="live", broker="ibkr", symbol="AAPL", quantity=D(10), avg_price=D(100))
    store.close()
    r = CliRunner().invoke(app, ["kill", "--flatten", "--reason", "get out now", "--json"])
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["flatten"]["live"] == {"ibkr": ["AAPL"]} and out["trading_state"]["state"] == "halted"
    assert "TRADING_MODE=live" in r.output


# --- 12: a flatten killed mid-way leaves a durable record ------------------------------------------------


async def test_a_flatten_is_on_record_while_it_runs_and_cleared_when_it_answers(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import Any

    from joe.runtime.bootstrap import bootstrap
    from joe.safety.broker_flatten import flatten_at_broker
    from joe.safety.flatten_route import IN_PROGRESS_KEY

    (data_dir.parent / "execution.yaml").write_text("version: 1\nlive:\n  enabled: true\n")
    live = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": "4002", "IBKR_ACCOUNT": "DU1234567"}
    for k, v in live.items():
        monkeypatch.setenv(k, v)
    rt = bootstrap()
    seen: list[Any] = []

    async def down(_rt: object) -> Any:
        seen.append(rt.store.get_state(IN_PROGRESS_KEY))
        raise ConnectionRefusedError("gateway restarting")

    try:
        ctx = SafetyContext.from_runtime(rt)
        with pytest.raises(ConnectionRefusedError):
            await flatten_at_broker(rt, ctx, reason="get out now", by="test", pause_s=0, connect=down)
        assert seen and all(isinstance(s, dict) and s["reason"] == "get out now" for s in seen)
        assert rt.store.get_state(IN_PROGRESS_KEY) is None  # it answered: nothing unfinished
    finally:
        rt.audit.close()
        rt.close()


def test_status_names_a_flatten_whose_process_died(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from joe.safety.flatten_route import IN_PROGRESS_KEY

    _paper_shell(data_dir, monkeypatch)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid no longer runs: as after a SIGKILL mid-flatten
    store = open_store(data_dir=data_dir)
    store.set_state(IN_PROGRESS_KEY, {"pid": dead.pid, "by": "web:127.0.0.1", "reason": "x", "at": "t"})
    store.close()
    st = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert st["flatten_unfinished"]["by"] == "web:127.0.0.1"
    assert "flatten NOT FINISHED" in CliRunner().invoke(app, ["status"]).output
