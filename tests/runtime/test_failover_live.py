"""Broker failover in live mode (issue 19), against BOTH simulators at once, each way round: the live
broker's simulator hangs mid-session (SIGSTOP: TWS / the REST server frozen, its book intact) → the run's
prices come from the other broker for mapped instruments, the run is refused (exit 3), no order reaches
either broker, the hung broker's positions are untouched; when it answers again (SIGCONT) the next run
ends the outage (with its duration) and reconciles with it before it sends any order. The simulators' own
books and request logs are the truth compared against (anything sent during the hang would be served
once the process runs again, so it would show)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.test_failover_runs import CONFIG, Sims, audit, both_sims, joe
from runtime.test_live_run_management import broker_net
from runtime.test_live_runs import get

LIVE = CONFIG.replace("version: 1\n", "version: 1\nlive:\n  enabled: true\n")


def records(project: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def _truth(sims: Sims, kind: str) -> str:
    """Where `broker_net` reads `kind`'s positions: IBKR's control port, Capital.com's REST API."""
    return f"http://127.0.0.1:{sims.ibkr_control if kind == 'ibkr' else sims.ports['capital']}"


def _sent(sims: Sims, kind: str) -> list[Any]:
    """Every order `kind` was ever sent: IBKR's order book, Capital.com's trading requests."""
    if kind == "ibkr":
        return list(get(f"{_truth(sims, 'ibkr')}/_sim/orders")["orders"])
    log = get(f"{_truth(sims, 'capital')}/_sim/requests")["requests"]
    trades = ("/positions", "/workingorders")
    return [
        (r["method"], r["path"]) for r in log if r["method"] != "GET" and any(t in r["path"] for t in trades)
    ]


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("down", ["ibkr", "capital"])
def test_the_live_broker_hangs_nothing_is_sent_its_positions_untouched_and_reconciled_first(
    project: Path, down: str
) -> None:
    other = "capital" if down == "ibkr" else "ibkr"
    (project / "config/execution.yaml").write_text(LIVE)
    with both_sims() as sims:
        env = {**sims.env(down), "TRADING_MODE": "live"}
        out = joe(project, env, "run", "--once")  # run 1: brackets at the live broker
        assert out.returncode == 0, out.stderr[-3000:]
        held = broker_net(down, _truth(sims, down))
        sent_down, sent_other = _sent(sims, down), _sent(sims, other)
        assert held and sent_down, f"run 1 placed nothing at {down}: the test would prove nothing"

        os.kill(sims.procs[down].pid, signal.SIGSTOP)  # the broker hangs mid-session
        try:
            out = joe(project, env, "run", "--once")
        finally:
            os.kill(sims.procs[down].pid, signal.SIGCONT)
        assert out.returncode == 3, out.stderr[-3000:]  # refused for safety: nothing sent
        assert f"{down} is unavailable" in out.stdout + out.stderr
        started = audit(project, "failover.started")
        assert [(s["broker"], s["to"]) for s in started] == [(down, other)]
        assert audit(project, "live.broker_unavailable")[0]["broker"] == down
        time.sleep(2)  # whatever reached the hung process's socket is served now that it runs again
        # Nothing reached either broker during the hang; the hung broker's positions are as they were.
        assert _sent(sims, down) == sent_down
        assert _sent(sims, other) == sent_other
        assert broker_net(down, _truth(sims, down)) == held

        out = joe(project, env, "run", "--once")  # the broker answers again
        assert out.returncode == 0, out.stderr[-3000:]
        recovered = audit(project, "failover.recovered")
        assert len(recovered) == 1 and recovered[0]["broker"] == down and recovered[0]["down_s"] > 0
        recs = records(project)
        last_start = max(r["seq"] for r in recs if r["event"] == "run.started")
        after = [r for r in recs if r["seq"] > last_start]
        reconciled = [r["seq"] for r in after if r["event"] == "live.reconciled"]
        sent = [r["seq"] for r in after if r["event"] in ("order.attempt", "order.submitted")]
        assert reconciled and all(seq > reconciled[0] for seq in sent)  # reconciled before any order
        assert next(r for r in after if r["event"] == "live.reconciled")["payload"]["explained"] is True
        now = broker_net(down, _truth(sims, down))
        for sym, qty in held.items():  # the positions were never touched by the outage
            assert now.get(sym) == qty, (sym, qty, now.get(sym))
