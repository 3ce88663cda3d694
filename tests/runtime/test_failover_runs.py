"""Broker failover end to end (issue 19): `joe run --once` with `brokers.failover` against BOTH simulators
at once, each a separate `joe sim` process on 127.0.0.1. The run's broker is killed between runs:
mapped instruments take the other broker's prices (the price basis checked: a CFD priced 8x the cash
instrument is not used), instruments only the dead broker offers get no price, the outage is audited and
shown by `joe status`, and when the broker is back the outage ends with its duration."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon_proc import sim_process
from runtime.test_live_runs import CAPITAL_LOGIN, JOE, post

CONFIG = """\
version: 1
pipeline:
  universe_size: 30
ai:
  enabled: false
brokers:
  failover:
    enabled: true
    price_tolerance_pct: 1
    request_timeout_s: 120
    instruments:
      AAPL: AAPL
      MSFT: MSFT
      NVDA: NVDA
"""
# Mapped instruments priced alike at both simulators; NVDA is 100 at IBKR and 800 at Capital.com.
ALIGNED = {"AAPL": 190.0, "MSFT": 410.0}


class Sims:
    """Both simulators, each startable and killable on its own. The first start takes a port the OS
    picked (read from the banner); a restart asks for that same port again (the run's environment names
    it), so only a restart can find it taken, as a broker coming back on its address would."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {"ibkr": 0, "capital": 0}
        self.ibkr_control = 0
        self.running: dict[str, ExitStack] = {}
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, kind: str) -> None:
        extra = ("--control-port", str(self.ibkr_control)) if kind == "ibkr" else ()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "IBKR_"))}
        stack = ExitStack()
        sim = stack.enter_context(
            sim_process(
                kind,
                *extra,
                port=self.ports[kind],
                env={**clean, **CAPITAL_LOGIN} if kind == "capital" else clean,
            )
        )
        self.running[kind] = stack
        self.ports[kind] = sim.port
        if kind == "ibkr":
            assert sim.control_port is not None
            self.ibkr_control = sim.control_port
        self.procs[kind] = sim.proc
        self.align(kind)

    def align(self, kind: str) -> None:
        if kind == "ibkr":
            for sym, mid in {**ALIGNED, "NVDA": 100.0}.items():
                post(f"http://127.0.0.1:{self.ibkr_control}/_sim/price", {"symbol": sym, "mid": mid})
        else:
            for sym, mid in ALIGNED.items():
                post(f"http://127.0.0.1:{self.ports['capital']}/_sim/price", {"epic": sym, "mid": mid})

    def kill(self, kind: str) -> None:
        self.procs.pop(kind).kill()
        self.running.pop(kind).close()

    def env(self, broker: str) -> dict[str, str]:
        return {
            "JOE_BROKER": broker,
            "IBKR_PORT": str(self.ports["ibkr"]),
            "IBKR_ACCOUNT": "DU1234567",
            "IBKR_CLIENT_ID": "7",
            "CAPITAL_API_URL": f"http://127.0.0.1:{self.ports['capital']}",
            "CAPITAL_STREAM_URL": f"ws://127.0.0.1:{self.ports['capital']}/connect",
            **CAPITAL_LOGIN,
        }

    def stop(self) -> None:
        for kind in list(self.procs):
            self.kill(kind)


@contextmanager
def both_sims() -> Iterator[Sims]:
    sims = Sims()
    try:
        sims.start("ibkr")
        sims.start("capital")
        yield sims
    finally:
        sims.stop()


def joe(project: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    keep = ("CAPITAL_", "IBKR_", "TRADING_MODE", "JOE_BROKER", "JOE_LIVE_CONFIRM")
    env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
    env.update(
        JOE_DATA_DIR=str(project / "data"), JOE_CONFIG=str(project / "config/execution.yaml"), **env_extra
    )
    return subprocess.run([JOE, *args], cwd=project, env=env, capture_output=True, text=True, timeout=400)


def last_run(project: Path) -> dict[str, Any]:
    with sqlite3.connect(project / "data" / "joe.db") as db:
        row = db.execute(
            "select run_id, status, summary from pipeline_runs order by started_at desc limit 1"
        ).fetchone()
    return {"run_id": row[0], "status": row[1], "summary": json.loads(row[2] or "{}")}


def audit(project: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec["event"] == event:
                out.append(rec["payload"])
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("primary", "secondary"), [("ibkr", "capital"), ("capital", "ibkr")])
def test_killed_broker_fails_over_to_the_other_and_recovers(
    project: Path, primary: str, secondary: str
) -> None:
    (project / "config/execution.yaml").write_text(CONFIG)
    with both_sims() as sims:
        env = sims.env(primary)
        # Run 1: the primary is up and prices everything (its bars go to the cache: the basis reference).
        out = joe(project, env, "run", "--once")
        assert out.returncode == 0, out.stderr[-3000:]
        first = last_run(project)["summary"]["price_sources"]
        assert first and set(first.values()) == {primary}
        # The primary dies mid-session.
        sims.kill(primary)
        sims.align(secondary)
        out = joe(project, env, "run", "--once")
        assert out.returncode == 0, out.stderr[-3000:]
        run2 = last_run(project)
        sources = run2["summary"]["price_sources"]
        mapped = {s: f"{secondary} ({s})" for s in ALIGNED}
        assert sources == mapped, sources  # only the mapped instruments, from the other broker
        if primary == "ibkr":  # the Capital.com CFD NVDA (800) is not the IBKR share (100)
            refused = audit(project, "failover.basis_refused")
            assert [r["symbol"] for r in refused] == ["NVDA"] and "apart" in refused[0]["detail"]
        started = audit(project, "failover.started")
        assert len(started) == 1 and started[0]["broker"] == primary and started[0]["to"] == secondary
        assert f"FAILOVER: {primary} unavailable" in out.stdout + out.stderr
        status = json.loads(joe(project, env, "status", "--json").stdout)
        assert status["prices"]["sources"] == mapped and primary in status["prices"]["down"]
        human = joe(project, env, "status").stdout
        assert f"broker {primary} DOWN" in human and f"from: {secondary} (AAPL): AAPL" in human.replace(
            "\n", " "
        )
        # The primary is back: the outage ends, with its duration, and it prices everything again.
        sims.start(primary)
        out = joe(project, env, "run", "--once")
        assert out.returncode == 0, out.stderr[-3000:]
        recovered = audit(project, "failover.recovered")
        assert len(recovered) == 1 and recovered[0]["broker"] == primary and recovered[0]["down_s"] > 0
        assert set(last_run(project)["summary"]["price_sources"].values()) == {primary}
        assert json.loads(joe(project, env, "status", "--json").stdout)["prices"]["down"] == {}
