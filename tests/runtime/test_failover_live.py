"""Broker failover in live mode (issue 19), against BOTH simulators at once: the IBKR simulator hangs
mid-session (SIGSTOP: TWS frozen, its book intact) → the run's prices come from Capital.com for mapped
instruments, no order reaches IBKR, its positions are untouched; when it answers again (SIGCONT) the next
run ends the outage (with its duration) and reconciles with IBKR before it sends any order. The
simulator's own order book and positions are the truth compared against."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from runtime.test_failover_runs import CONFIG, audit, both_sims, joe
from runtime.test_live_runs import get

LIVE = CONFIG.replace("version: 1\n", "version: 1\nlive:\n  enabled: true\n")


def records(project: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


@pytest.mark.timeout(1200)
def test_ibkr_hangs_no_order_goes_to_it_positions_untouched_and_reconciled_first(project: Path) -> None:
    (project / "config/execution.yaml").write_text(LIVE)
    with both_sims() as sims:
        env = {**sims.env("ibkr"), "TRADING_MODE": "live"}
        control = f"http://127.0.0.1:{sims.ibkr_control}"
        out = joe(project, env, "run", "--once")  # run 1: brackets at IBKR
        assert out.returncode == 0, out.stderr[-3000:]
        held = get(f"{control}/_sim/positions")["positions"]
        orders = get(f"{control}/_sim/orders")["orders"]
        assert orders, "run 1 placed nothing at IBKR: the test would prove nothing"

        os.kill(sims.procs["ibkr"].pid, signal.SIGSTOP)  # TWS hangs mid-session
        try:
            out = joe(project, env, "run", "--once")
        finally:
            os.kill(sims.procs["ibkr"].pid, signal.SIGCONT)
        assert out.returncode == 3, out.stderr[-3000:]  # refused for safety: nothing sent
        assert "ibkr is unavailable" in out.stdout + out.stderr
        started = audit(project, "failover.started")
        assert [(s["broker"], s["to"]) for s in started] == [("ibkr", "capital")]
        assert audit(project, "live.broker_unavailable")[0]["broker"] == "ibkr"
        # Nothing reached IBKR while it was down, and nothing was closed or hedged at Capital.com.
        assert get(f"{control}/_sim/orders")["orders"] == orders
        assert get(f"{control}/_sim/positions")["positions"] == held
        cap = get(f"http://127.0.0.1:{sims.ports['capital']}/_sim/requests")["requests"]
        trades = ("/positions", "/workingorders")
        assert not [r for r in cap if r["method"] != "GET" and any(t in r["path"] for t in trades)]

        out = joe(project, env, "run", "--once")  # IBKR answers again
        assert out.returncode == 0, out.stderr[-3000:]
        recovered = audit(project, "failover.recovered")
        assert len(recovered) == 1 and recovered[0]["broker"] == "ibkr" and recovered[0]["down_s"] > 0
        recs = records(project)
        last_start = max(r["seq"] for r in recs if r["event"] == "run.started")
        after = [r for r in recs if r["seq"] > last_start]
        reconciled = [r["seq"] for r in after if r["event"] == "live.reconciled"]
        sent = [r["seq"] for r in after if r["event"] in ("order.attempt", "order.submitted")]
        assert reconciled and all(seq > reconciled[0] for seq in sent)  # reconciled before any order
        assert next(r for r in after if r["event"] == "live.reconciled")["payload"]["explained"] is True
        now = get(f"{control}/_sim/positions")["positions"]
        for sym, qty in held.items():  # IBKR's positions were never touched by the outage
            assert now.get(sym) == qty, (sym, qty, now.get(sym))
