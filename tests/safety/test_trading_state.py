"""TradingState: every transition persists across a restart and is audited with who and why; only a
human resume (with a reason) moves it back up; the kill switch from each entry point moves it and the
next order is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.audit.log import tail, verify
from joe.cli.main import app
from joe.safety.control import SafetyContext, check_kill_file, entry_allowed, kill, resume
from joe.safety.kill_switch import KillLevel, write_kill_file
from joe.safety.trading_state import STATE_KEY, ResumeRefused, TradingState, TradingStateStore

from .conftest import restart

A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def _events(ctx: SafetyContext, event: str) -> list[dict[str, object]]:
    return [r["payload"] for r in tail(ctx.data_dir / "audit", 200) if r["event"] == event]


@pytest.mark.parametrize(("frm", "to"), [(A, R), (A, H), (R, H)])
def test_escalation_persists_across_restart_and_is_audited(
    ctx: SafetyContext, frm: TradingState, to: TradingState
) -> None:
    if frm is not A:
        ctx.states.escalate(frm, by="setup", reason="setup")
    rec, changed = ctx.states.escalate(to, by="breaker:ibkr", reason="5 rejects in 60s")
    assert changed and rec.state is to
    again = restart(ctx)
    now = again.states.current()
    assert (now.state, now.by, now.reason) == (to, "breaker:ibkr", "5 rejects in 60s")
    last = _events(again, "safety.state_changed")[-1]
    assert last == {
        "from": frm.value,
        "to": to.value,
        "by": "breaker:ibkr",
        "reason": "5 rejects in 60s",
        "action": "escalate",
    }
    assert verify(ctx.data_dir / "audit").ok


@pytest.mark.parametrize(("frm", "to"), [(H, A), (R, A), (H, R)])
def test_resume_persists_across_restart_and_is_audited(
    ctx: SafetyContext, frm: TradingState, to: TradingState
) -> None:
    ctx.states.escalate(frm, by="setup", reason="setup")
    rec = ctx.states.resume(by="cli:alice", reason="checked the broker, all fine", to=to)
    assert rec.state is to
    again = restart(ctx)
    assert again.states.current().state is to and again.states.current().by == "cli:alice"
    assert _events(again, "safety.state_changed")[-1]["action"] == "resume"


def test_guards_never_move_the_state_up(ctx: SafetyContext) -> None:
    ctx.states.escalate(H, by="kill", reason="x")
    rec, changed = ctx.states.escalate(R, by="margin", reason="cushion low")
    assert not changed and rec.state is H and rec.by == "kill"


def test_resume_needs_a_reason_and_something_to_resume(ctx: SafetyContext) -> None:
    ctx.states.escalate(H, by="kill", reason="x")
    with pytest.raises(ResumeRefused, match="written reason"):
        ctx.states.resume(by="cli:bob", reason="  ok ")
    with pytest.raises(ResumeRefused, match="already halted; nothing to resume"):
        TradingStateStore(ctx.store, ctx.audit).resume(by="cli:bob", reason="fine now", to=H)
    assert ctx.states.current().state is H


def test_unreadable_stored_state_is_halted_not_active(ctx: SafetyContext) -> None:
    ctx.store.set_state(STATE_KEY, {"state": "bogus"})
    assert ctx.states.current().state is H


def test_a_halt_is_stored_even_when_the_audit_write_fails(ctx: SafetyContext) -> None:
    ctx.audit.close()  # every audit write now raises AuditWriteError
    with pytest.raises(Exception, match="closed"):
        ctx.states.escalate(H, by="breaker", reason="disconnects")
    assert ctx.states.current().state is H


def test_state_change_commits_the_audit_anchor_with_it(ctx: SafetyContext) -> None:
    from joe.audit.anchor import StoreAnchor

    ctx.states.escalate(H, by="kill", reason="x")
    anchor = StoreAnchor(ctx.store).load_anchor()
    assert anchor is not None and anchor.seq == tail(ctx.data_dir / "audit", 1)[0]["seq"]


# ---------------------------------------------------------------- the kill switch, from each entry point
def test_control_function_kill_is_honoured_by_the_next_order(ctx: SafetyContext) -> None:
    """What the dashboard and Telegram call."""
    assert entry_allowed(ctx)[0]
    kill(ctx, KillLevel.REDUCE, reason="news in 5 minutes", by="telegram:42")
    allowed, rec = entry_allowed(restart(ctx))
    assert not allowed and rec.state is R and rec.state.allows_exits()
    assert _events(ctx, "safety.kill")[-1] == {
        "level": "reduce",
        "reason": "news in 5 minutes",
        "by": "telegram:42",
    }


def test_kill_file_is_honoured_and_blocks_resume(ctx: SafetyContext) -> None:
    write_kill_file(ctx.data_dir, KillLevel.HALT, "operator on the phone")
    allowed, rec = entry_allowed(ctx)  # the check each run (and the daemon's tick) makes
    assert not allowed and (rec.state, rec.by) == (H, "kill-file")
    assert "operator on the phone" in rec.reason
    with pytest.raises(ResumeRefused, match="remove it first"):
        resume(ctx, reason="all good now", by="cli:alice")
    (ctx.data_dir / "KILL").unlink()
    assert resume(ctx, reason="all good now", by="cli:alice").state is A
    assert check_kill_file(ctx) is None and entry_allowed(ctx)[0]


def test_an_odd_kill_file_still_halts(ctx: SafetyContext) -> None:
    (ctx.data_dir / "KILL").write_text("")
    assert entry_allowed(ctx)[1].state is H


def test_cli_kill_resume_and_status(data_dir: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["kill", "--reduce", "--reason", "too volatile", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["trading_state"]["state"] == "reducing"
    r = runner.invoke(app, ["kill", "--halt", "--reason", "broker acting up"])
    assert r.exit_code == 0 and "HALTED" in r.output
    st = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert st["trading_state"]["state"] == "halted" and "broker acting up" in st["trading_state"]["reason"]
    assert st["trading_state"]["by"].startswith("cli:") and st["audit"]["ok"]
    assert runner.invoke(app, ["resume"]).exit_code == 2  # --reason is required
    refused = runner.invoke(app, ["resume", "--reason", "ok"])
    assert refused.exit_code == 3 and "written reason" in refused.output
    ok = runner.invoke(app, ["resume", "--reason", "spreads normal again", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["trading_state"]["state"] == "active"
    human = runner.invoke(app, ["status"])
    assert human.exit_code == 0 and "ACTIVE" in human.output and "audit chain" in human.output
    assert runner.invoke(app, ["kill", "--halt", "--reduce", "--reason", "x"]).exit_code == 2
