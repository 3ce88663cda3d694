"""The daemon's quote-stream failover end to end (issue 19): `joe daemon` as its own process with
`brokers.failover`, against BOTH simulators at once (each a `joe sim` process on the real wire). The
daemon's broker is killed mid-session: its mapped instruments stream the other broker's quotes (AAPL,
MSFT priced alike at both), the CFD on another basis (NVDA: 100 at IBKR, ~800 at Capital.com) is
never used and stays stale, none of them takes an entry while failed over; the killed simulator is
started again: the daemon's broker quotes them again, the outage ends with its duration. Both ways
round. Market hours follow a rehearsal clock (a Tuesday mid-session) so silence is judged as if the
market were open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.daemon_harness import DaemonProc, audit_records
from runtime.test_failover_runs import CONFIG, Sims
from runtime.test_live_runs import get

MID_SESSION = "2026-12-01T16:00:00Z"
WATCH = ["AAPL", "MSFT", "NVDA"]
IBKR_MIDS = {"AAPL": 190.0, "MSFT": 410.0, "NVDA": 100.0}


def events(project: Path, event: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in audit_records(project, event)]


@contextlib.asynccontextmanager
async def ibkr_ticking(sims: Sims) -> AsyncIterator[None]:
    """TWS quotes on price moves only: move each IBKR price a hair every 0.2 s (within 0.05%), and keep
    trying while the simulator is down (it comes back on the same control port)."""

    async def run() -> None:
        n = 0
        async with httpx.AsyncClient(timeout=2) as c:
            while True:
                n += 1
                for sym, mid in IBKR_MIDS.items():
                    with contextlib.suppress(httpx.HTTPError):
                        url = f"http://127.0.0.1:{sims.ibkr_control}/_sim/price"
                        await c.post(url, json={"symbol": sym, "mid": mid * (1 + 0.0001 * (n % 5))})
                await asyncio.sleep(0.2)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("primary", "secondary"), [("ibkr", "capital"), ("capital", "ibkr")])
async def test_daemon_streams_the_other_brokers_quotes_while_its_own_is_killed_then_switches_back(
    project: Path, primary: str, secondary: str
) -> None:
    (project / "config/execution.yaml").write_text(CONFIG)
    sims = Sims()
    d: DaemonProc | None = None
    try:
        await asyncio.to_thread(sims.start, "ibkr")
        await asyncio.to_thread(sims.start, "capital")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "IBKR_", "TRADING_MODE"))}
        env |= sims.env(primary) | {"JOE_DATA_DIR": str(project / "data"),
                                    "JOE_CONFIG": str(project / "config/execution.yaml")}  # fmt: skip
        async with ibkr_ticking(sims):
            d = DaemonProc(project, env, primary, "--watch", ",".join(WATCH), "--stale-after", "1.5",
                           "--clock-start", MID_SESSION)  # fmt: skip
            own = {s: primary for s in WATCH}
            b = await d.beat(lambda b: b["price_sources"] == own and not b["stale"] and b["quotes"] > 30,
                             f"{primary} quoting every instrument")  # fmt: skip
            assert b["no_entry"] == {}

            await asyncio.to_thread(sims.kill, primary)  # mid-session
            borrowed = {"AAPL": f"{secondary} (AAPL)", "MSFT": f"{secondary} (MSFT)", "NVDA": primary}
            b = await d.beat(lambda b: b["price_sources"] == borrowed, "AAPL and MSFT from the other broker")
            q = b["quotes"]
            flowing = "the other broker's quotes flow"
            b = await d.beat(lambda b: b["quotes"] > q + 20 and "NVDA" in b["stale"]
                             and set(b["no_entry"]) == set(WATCH), flowing)  # fmt: skip
            assert "AAPL" not in b["stale"] and "MSFT" not in b["stale"]  # fresh, from the other broker
            assert set(b["no_entry"]) == set(WATCH)  # no entry while its broker is down
            started = events(project, "failover.started")
            assert [(s["broker"], s["to"]) for s in started] == [(primary, secondary)]
            refused = events(project, "failover.basis_refused")
            assert [r["symbol"] for r in refused] == ["NVDA"] and "apart" in refused[0]["detail"]
            assert {r["symbol"] for r in events(project, "failover.quotes_borrowed")} == set(WATCH)

            await asyncio.to_thread(sims.start, primary)  # back on the same ports
            b = await d.beat(lambda b: b["price_sources"] == own and not b["no_entry"] and not b["stale"],
                             f"{primary} quoting again", timeout=120)  # fmt: skip
            recovered = events(project, "failover.recovered")
            assert len(recovered) == 1 and recovered[0]["broker"] == primary and recovered[0]["down_s"] > 1
            returned = {r["symbol"]: r for r in events(project, "failover.quotes_returned")}
            assert set(returned) == set(WATCH) and all(r["borrowed_s"] > 0 for r in returned.values())
            assert returned["AAPL"]["quotes"] > 0 and returned["NVDA"]["quotes"] == 0
            rc, err = await d.terminate()
            d = None
            assert rc == 0, err[-3000:]
    finally:
        if d is not None:
            await d.kill()
        await asyncio.to_thread(sims.stop)


def trades_at_capital(sims: Sims) -> list[dict[str, Any]]:
    """Every request that opens, changes or closes something at the Capital.com simulator."""
    reqs = get(f"http://127.0.0.1:{sims.ports['capital']}/_sim/requests")["requests"]
    trading = ("/positions", "/workingorders")
    return [r for r in reqs if r["method"] != "GET" and any(t in r["path"] for t in trading)]


def ibkr_book(sims: Sims) -> tuple[list[str], dict[str, Any]]:
    """The IBKR simulator's orders (their refs) and positions per symbol."""
    control = f"http://127.0.0.1:{sims.ibkr_control}"
    orders = sorted(str(o.get("order_ref")) for o in get(f"{control}/_sim/orders")["orders"])
    return orders, get(f"{control}/_sim/positions")["positions"]


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("primary", "secondary"), [("ibkr", "capital"), ("capital", "ibkr")])
async def test_live_daemon_broker_hangs_the_others_quotes_take_over_nothing_moves_and_it_is_reconciled(
    project: Path, primary: str, secondary: str
) -> None:
    """Live (demo): run 1 places brackets at the daemon's broker; the live daemon holds them. The broker
    hangs mid-session (SIGSTOP: its book intact): the mapped instruments stream the other broker's
    quotes, none takes an entry, nothing is sent to the other broker, the broker's own book is
    untouched; it answers again (SIGCONT): the outage ends with its duration and the desk reconciles
    with it (audited after the recovery) before its instruments take entries again."""
    from runtime.test_failover_live import LIVE
    from runtime.test_failover_runs import joe

    (project / "config/execution.yaml").write_text(LIVE)
    sims = Sims()
    d: DaemonProc | None = None
    stopped = False
    try:
        await asyncio.to_thread(sims.start, "ibkr")
        await asyncio.to_thread(sims.start, "capital")
        env = {**sims.env(primary), "TRADING_MODE": "live"}
        out = await asyncio.to_thread(joe, project, env, "run", "--once")  # run 1: brackets at the primary
        assert out.returncode == 0, out.stderr[-3000:]
        ib_orders, ib_held = ibkr_book(sims)
        cap_trades = trades_at_capital(sims)
        assert ib_orders if primary == "ibkr" else cap_trades, "run 1 placed nothing: proves nothing"
        assert (cap_trades if primary == "ibkr" else ib_orders) == []
        keep = ("CAPITAL_", "IBKR_", "TRADING_MODE")
        denv = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        denv |= env | {"JOE_DATA_DIR": str(project / "data"),
                       "JOE_CONFIG": str(project / "config/execution.yaml")}  # fmt: skip
        async with ibkr_ticking(sims):
            d = DaemonProc(project, denv, primary, "--watch", ",".join(WATCH), "--stale-after", "1.5",
                           "--clock-start", MID_SESSION)  # fmt: skip
            own = {s: primary for s in WATCH}
            await d.beat(lambda b: b["mode"] == "live" and bool(b.get("broker_connected")) and not b["stale"]
                         and own.items() <= b["price_sources"].items(), "live, quoting", 180)  # fmt: skip
            cap_trades = trades_at_capital(sims)

            os.kill(sims.procs[primary].pid, signal.SIGSTOP)  # the broker hangs mid-session
            stopped = True
            other = {"AAPL": f"{secondary} (AAPL)", "MSFT": f"{secondary} (MSFT)"}
            await d.beat(lambda b: other.items() <= b["price_sources"].items()
                         and set(WATCH) <= set(b["no_entry"]), "the other's quotes, no entry")  # fmt: skip
            await asyncio.sleep(2)  # an outage of a few seconds, quotes from the other broker all along
            if primary == "ibkr":  # nothing was sent to Capital.com (it answers: ask it now)
                assert trades_at_capital(sims) == cap_trades
            else:
                assert ibkr_book(sims) == (ib_orders, ib_held)
            os.kill(sims.procs[primary].pid, signal.SIGCONT)  # it answers again
            stopped = False
            await d.beat(lambda b: own.items() <= b["price_sources"].items() and not b["no_entry"],
                         f"{primary} quoting and reconciled", timeout=120)  # fmt: skip
            recs = audit_records(project)
            recovered = [r for r in recs if r["event"] == "failover.recovered"]
            assert len(recovered) == 1 and recovered[0]["payload"]["down_s"] > 2
            after = [r for r in recs if r["seq"] > recovered[0]["seq"]]
            reconciled = [r for r in after if r["event"] == "daemon.reconciled"]
            assert reconciled and reconciled[0]["payload"]["explained"] is True
            # The broker's own book was never touched by the outage, the other broker never traded.
            assert trades_at_capital(sims) == cap_trades
            assert ibkr_book(sims) == (ib_orders, ib_held)
            rc, err = await d.terminate()
            d = None
            assert rc == 0, err[-3000:]
    finally:
        if stopped:
            os.kill(sims.procs[primary].pid, signal.SIGCONT)
        if d is not None:
            await d.kill()
        await asyncio.to_thread(sims.stop)
