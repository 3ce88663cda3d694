"""A stored trading state that cannot be read — not JSON, or JSON that is no state — is HALTED, said,
audited and shown; `joe status` and the run never crash on it (review of issue 11, point 7)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.audit.log import tail, verify
from joe.cli.main import app
from joe.safety.control import SafetyContext, entry_allowed, kill, resume
from joe.safety.kill_switch import KillLevel
from joe.safety.trading_state import STATE_EVENT, STATE_KEY, TradingState

from .conftest import restart

BAD_VALUES = [
    "not json",
    '{"state": ',
    '{"state": "ACTIVE "}',
    '{"state": "paused"}',
    '{"state": null}',
    "[]",
]


def _corrupt(data_dir: Path, value: str) -> None:
    con = sqlite3.connect(data_dir / "joe.db")
    with con:
        con.execute("update kv_state set value=? where key=?", (value, STATE_KEY))
        assert con.total_changes == 1
    con.close()


@pytest.mark.parametrize("value", BAD_VALUES)
def test_an_unreadable_state_is_halted_audited_and_resumable(ctx: SafetyContext, value: str) -> None:
    kill(ctx, KillLevel.REDUCE, reason="set a state row", by="cli:test")
    ctx.store.close()
    _corrupt(ctx.data_dir, value)
    again = restart(ctx)
    allowed, rec = entry_allowed(again)
    assert not allowed and rec.state is TradingState.HALTED and rec.by == "store"
    assert "unreadable stored state" in rec.reason and "joe resume" in rec.reason
    audited = [r["payload"] for r in tail(again.data_dir / "audit", 50) if r["event"] == STATE_EVENT]
    assert audited[-1]["from"] == "unreadable" and audited[-1]["to"] == "halted"
    assert again.states.current() == rec  # repaired once, in place: read again, the same record
    assert resume(again, reason="checked the store by hand", by="cli:alice").state is TradingState.ACTIVE
    assert verify(again.data_dir / "audit").ok


def test_status_and_run_show_it_instead_of_a_json_error(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["kill", "--reduce", "--reason", "set a state row"]).exit_code == 0
    _corrupt(data_dir, "not json")
    r = runner.invoke(app, ["status", "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.stdout)["trading_state"]
    assert st["state"] == "halted" and "unreadable stored state" in st["reason"]
    human = runner.invoke(app, ["status"])
    assert (
        human.exit_code == 0
        and "HALTED" in human.output
        and "JSONDecodeError" not in human.output.split("(")[0]
    )
