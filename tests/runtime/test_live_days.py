"""Live runs across days (review r10days): what happened at the broker between two daily runs must
weigh on the next run's risk checks at the minute it trades, not at its daily bar's date.

Separate processes against `joe sim ibkr`, as `test_live_runs.py`; the simulator is the truth."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from joe.data.calendars import nth_session_after
from runtime.test_live_runs import (
    LIVE_CONFIG,
    ONE_POSITION,
    _as_of,
    _open_minute,
    _post,
    _signals,
    _through_stop,
    get,
    joe_run,
    live_facts,
    post,
    sim,
)


@pytest.mark.timeout(900)
def test_stop_outs_between_runs_lock_the_next_days_entries(project: Path) -> None:
    """Before: the protections' locks of a live run were judged at its daily bar's date (00:00 UTC of
    the session), so a stop-out earlier that day (the broker's stop fired at the open, the run came
    after it) was not a closed trade yet: the stop-loss streak guard and the cooldown let the run enter
    again. Now they are judged at the run's minute: the stop-outs at D+1's open lock every entry of
    the D+1 run (safety.protections.stoploss_guard_trades: as many as were held), and nothing new
    reaches the broker. (IBKR: a Capital.com run after a clock move opens nothing anyway, its quotes
    are dated ahead of the wall clock.)"""
    (project / "config/execution.yaml").write_text(ONE_POSITION)
    with sim("ibkr") as (env, control):
        env = {**env, "TRADING_MODE": "live"}
        facts, report = live_facts(joe_run(project, env))
        held = facts["positions"]
        assert held, facts["outcomes"]
        # The guard locks everything after as many stop-outs as run 1 opened positions.
        (project / "config/execution.yaml").write_text(
            LIVE_CONFIG + f"safety:\n  protections:\n    stoploss_guard_trades: {len(held)}\n"
        )
        day2 = nth_session_after("XNYS", _as_of(report), 1)
        open2 = _open_minute(day2)
        _post(f"{control}/_sim/clock", {"to": open2})
        for pos in held:  # D+1 opens through both stops: the broker fills them
            post(
                f"{control}/_sim/price",
                {"symbol": pos["symbol"], "mid": _through_stop(pos["stop"], pos["quantity"])},
            )
        assert all(Decimal(q) == 0 for q in get(f"{control}/_sim/positions")["positions"].values())
        parents_before = [o for o in get(f"{control}/_sim/orders")["orders"] if o["parent_id"] == 0]
        time.sleep(1.0)
        # Run 2, later that morning (11:00 New York): the stop-outs are today's closed trades.
        later = (datetime.fromisoformat(open2) + timedelta(hours=1)).isoformat()
        facts2, report2 = live_facts(joe_run(project, {**env, "JOE_CLOCK_START": later}))
        assert facts2["reconciled"] is True, facts2["findings"]
        stops = [
            f
            for f in facts2["fills"]
            if any(
                o["client_order_id"] == f["client_order_id"] and o["leg"] == "stop" for o in facts2["orders"]
            )
        ]
        assert len(stops) == len(held), facts2["fills"]
        executions = [s["execution"] for s in _signals(report2).values() if not s["vetoed"]]
        assert executions, "run 2 has signals to judge"
        assert all("stoploss_guard" in e for e in executions), executions
        assert facts2["outcomes"] == []
        parents_after = [o for o in get(f"{control}/_sim/orders")["orders"] if o["parent_id"] == 0]
        assert len(parents_after) == len(parents_before)  # nothing new reached the broker


@pytest.mark.timeout(900)
def test_shadow_stop_outs_lock_the_next_days_shadow_entries(project: Path) -> None:
    """Before: a shadow run's protections read the main store's closed positions of mode "shadow",
    where nothing is ever closed (the shadow book keeps its own store, twin-shadow.db): its own
    stop-outs never locked its next entries, so shadow showed entries live would have been refused.
    Now its book's closed trades are judged: a stop-out of the shadow book at D+1's open locks every
    entry of the D+1 shadow run (stoploss_guard_trades: as many as it held), and nothing is sent."""
    (project / "config/execution.yaml").write_text(ONE_POSITION)
    book = project / "data" / "twin-shadow.db"
    with sim("ibkr") as (env, control):
        env = {**env, "TRADING_MODE": "shadow"}
        _, report = live_facts(joe_run(project, env))
        with sqlite3.connect(book) as db:
            held = db.execute(
                "select symbol, quantity, stop_loss from positions where status = 'open'"
            ).fetchall()
        assert held  # the shadow book filled the would-be brackets
        (project / "config/execution.yaml").write_text(
            LIVE_CONFIG + f"safety:\n  protections:\n    stoploss_guard_trades: {len(held)}\n"
        )
        day2 = nth_session_after("XNYS", _as_of(report), 1)
        open2 = _open_minute(day2)
        _post(f"{control}/_sim/clock", {"to": open2})
        for sym, qty, stop in held:  # D+1 opens through the shadow book's stops
            post(f"{control}/_sim/price", {"symbol": sym, "mid": _through_stop(str(stop), str(qty))})
        later = (datetime.fromisoformat(open2) + timedelta(hours=1)).isoformat()
        _, report2 = live_facts(joe_run(project, {**env, "JOE_CLOCK_START": later}))
        with sqlite3.connect(book) as db:
            closed = db.execute(
                "select symbol, exit_reason from positions where status = 'closed'"
            ).fetchall()
        assert {s for s, _ in closed} == {s for s, _, _ in held} and all("stop" in r for _, r in closed)
        executions = [s["execution"] for s in _signals(report2).values() if not s["vetoed"]]
        assert executions, "run 2 has signals to judge"
        assert all("stoploss_guard" in e for e in executions), executions
        requests = get(f"{control}/_sim/requests")["requests"]
        assert not [r for r in requests if r["name"] == "placeOrder"]  # shadow: nothing sent, ever
