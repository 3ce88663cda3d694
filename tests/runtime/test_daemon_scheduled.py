"""A SCHEDULED live run inside `joe daemon` opens brackets end to end: the daemon is its own process in
live (demo) mode against each simulator, its schedule fires on a rehearsal clock (`--clock-start`, the
`after_open` run of Tuesday 2026-12-01 a few seconds after the start), the run (`joe run --once`, the
daemon's child, same clientId / session) places brackets visible at the simulator, the daemon takes the
broker back, reconciles, watches them, trails a stop at the broker as the price rises, and books the
broker's stop fill exactly once. The simulator's books are the truth."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.core.models import OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from market_clock import sim_clock
from runtime.daemon_harness import JOE, DaemonProc, audit_records, read_store, settled, until
from runtime.test_daemon_live_ibkr import ACCOUNT, gates_accept_a_simulator_port
from runtime.test_daemon_live_ibkr import live_env as ibkr_env

CONFIG = """\
version: 1
live:
  enabled: true
ai:
  enabled: false
pipeline:
  universe_size: 60
daemon:
  backup_exit_grace_s: 30
  trail_step_pct: 0.5
  schedule:
    pre_open_scan_min: null
    after_open_min: 15
    pre_close_min: null
"""
# NYSE opens 14:30 UTC in December: after_open fires at 14:45. The rehearsal clock starts before the
# daemon has connected and reconciled: 25 s leaves room for a slow start on a loaded machine (the run is
# not "missed").
CLOCK_START = "2026-12-01T14:44:35Z"
RUN_AT = "2026-12-01T14:45:00+00:00"


@dataclass
class Venue:
    """What the test needs of a simulator, whichever broker."""

    broker: str
    env: dict[str, str]
    set_price: Callable[[str, Decimal], Awaitable[None]]
    held: Callable[[str], Decimal]  # signed quantity at the broker
    working_stop: Callable[[Order], Decimal | None]  # the resting stop's trigger at the broker
    order_count: Callable[[], int]  # orders the broker has from Joe (every leg)


@pytest.fixture
async def ibkr(project: Path) -> AsyncIterator[Venue]:
    if not gates_accept_a_simulator_port():
        pytest.skip("the live gates do not accept the TWS simulator's port for a DU account yet")
    sim = IBKRSimulator(server_version=178, seed=7, account=ACCOUNT, clock=sim_clock())
    await sim.start()

    async def set_price(symbol: str, px: Decimal) -> None:
        sim.set_price(symbol, px)

    def held(symbol: str) -> Decimal:
        p = sim.book.positions.get(symbol)
        return p.qty if p is not None else Decimal(0)

    def working_stop(stop: Order) -> Decimal | None:
        bo = sim.find(stop.client_order_id)
        return None if bo is None or bo.done else Decimal(str(bo.placed.aux_price))

    def order_count() -> int:
        return len([o for o in sim.book.orders.values() if o.placed.order_ref.startswith("joe-")])

    try:
        yield Venue("ibkr", ibkr_env(project, sim), set_price, held, working_stop, order_count)
    finally:
        await sim.stop()


@pytest.fixture
async def capital(project: Path) -> AsyncIterator[Venue]:
    sim = CapitalSimulator(seed=11, limits=SimLimits().scaled(10.0), tick_s=0.05, clock=sim_clock())
    await sim.start()
    sim.paused = True  # prices move only when the test says so
    login = sim.login

    async def set_price(epic: str, px: Decimal) -> None:
        sim.set_mid(epic, float(px))
        await sim.stream.pump([epic])

    def held(epic: str) -> Decimal:
        total = Decimal(0)
        for p in sim.account().positions:
            if p.epic == epic:
                total += Decimal(str(p.size)) * (1 if p.direction == "BUY" else -1)
        return total

    def working_stop(stop: Order) -> Decimal | None:
        sym = stop.intent.symbol
        ps = [p for p in sim.account().positions if p.epic == sym and p.stop_order is not None]
        return Decimal(str(ps[0].stop_order.stop_price)) if len(ps) == 1 else None

    def order_count() -> int:
        return sim.count("/positions", method="POST") + sim.count("/workingorders", method="POST")

    env = {
        **os.environ, "TRADING_MODE": "live", "JOE_BROKER": "capital", "CAPITAL_DEMO": "true",
        "CAPITAL_API_KEY": login.api_key, "CAPITAL_IDENTIFIER": login.identifier,
        "CAPITAL_PASSWORD": login.password, "CAPITAL_API_URL": sim.url, "CAPITAL_STREAM_URL": sim.stream_url,
        "JOE_DATA_DIR": str(project / "data"), "JOE_CONFIG": str(project / "config/execution.yaml"),
    }  # fmt: skip
    try:
        yield Venue("capital", env, set_price, held, working_stop, order_count)
    finally:
        await sim.stop()


def legs(data: Path) -> dict[str, dict[OrderLeg, Order]]:
    """Joe's orders by signal and leg (the latest order of a leg wins)."""
    out: dict[str, dict[OrderLeg, Order]] = {}
    for o in read_store(data, lambda s: s.orders(mode="live")):
        out.setdefault(o.intent.signal_id, {})[o.intent.leg] = o
    return out


async def scheduled_run_opens_trails_and_books_once(v: Venue, project: Path) -> None:
    (project / "config/execution.yaml").write_text(CONFIG)
    data = project / "data"
    d = DaemonProc(project, v.env, v.broker, "--clock-start", CLOCK_START, "--stale-after", "600",
                   schedule=True)  # fmt: skip
    try:
        await d.beat(lambda b: b["status"] == "running" and b["mode"] == "live", "the daemon running")
        assert v.order_count() == 0  # nothing before the schedule fires
        # The schedule fires on its (rehearsal) clock: the after_open run, in a child process.
        await until(lambda: bool(audit_records(project, "daemon.run_finished")), "the scheduled run", 600)
        [run] = audit_records(project, "daemon.run")
        assert run["payload"]["name"] == "after_open" and run["payload"]["at"] == RUN_AT
        [done] = audit_records(project, "daemon.run_finished")
        assert done["payload"]["rc"] == 0, done["payload"]
        opened = {sid: lg for sid, lg in legs(data).items()
                  if OrderLeg.ENTRY in lg and lg[OrderLeg.ENTRY].state is OrderState.FILLED}  # fmt: skip
        assert opened, "the scheduled run opened no bracket"
        # Each bracket is at the broker: the position, a resting stop at Joe's level.
        for lg in opened.values():
            entry, stop = lg[OrderLeg.ENTRY], lg[OrderLeg.STOP_LOSS]
            sign = 1 if entry.intent.side is Side.BUY else -1
            assert v.held(entry.intent.symbol) == sign * entry.filled_quantity
            assert v.working_stop(stop) == stop.intent.stop_price
            assert OrderLeg.TAKE_PROFIT in lg
        # The daemon took the broker back: reconciled first, watching every position the run opened.
        beat = await d.beat(lambda b: b["broker_connected"] and b["positions"] == len(opened),
                            "watching what the run opened")  # fmt: skip
        assert beat["reconciled"]["explained"] is True

        # One position: the price moves its way → the daemon trails the stop at the broker.
        sid, lg = sorted(opened.items())[0]
        entry, stop = lg[OrderLeg.ENTRY], lg[OrderLeg.STOP_LOSS]
        sym, qty = entry.intent.symbol, entry.filled_quantity
        sign = 1 if entry.intent.side is Side.BUY else -1
        px0, s0 = entry.avg_fill_price, stop.intent.stop_price
        assert px0 is not None and s0 is not None
        distance = abs(px0 - s0)
        room = abs(lg[OrderLeg.TAKE_PROFIT].intent.limit_price - px0)  # type: ignore[operator]
        rise = min(distance, room / 2)
        for k in range(1, 6):
            await v.set_price(sym, px0 + sign * rise * k / 5)
            await asyncio.sleep(0.2)
        top = px0 + sign * rise
        await until(lambda: sign * ((v.working_stop(stop) or s0) - s0) > 0, "the stop trailed at the broker")
        moved = await settled(lambda: v.working_stop(stop), lambda: v.set_price(sym, top))
        assert moved is not None and sign * (moved - s0) > 0 and sign * (top - moved) > 0  # tighter, not past
        # Through the moved stop: the broker fills it; the daemon books it once and stops watching.
        await v.set_price(sym, moved - sign * distance / 2)
        await until(lambda: v.held(sym) == 0, "the broker's stop filled")
        await d.beat(lambda b: b["positions"] == len(opened) - 1, "the position closed in the daemon")
        await asyncio.sleep(1.0)
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    after = legs(data)
    assert OrderLeg.EXIT not in after[sid]  # the broker's stop did it: no bot-side exit
    filled_stop = [o for o in read_store(data, lambda s: s.orders_for_signal(sid))
                   if o.intent.leg is OrderLeg.STOP_LOSS and o.state is OrderState.FILLED]  # fmt: skip
    assert len(filled_stop) == 1 and filled_stop[0].filled_quantity == qty
    assert len(read_store(data, lambda s: s.fills(filled_stop[0].client_order_id))) == 1
    # Every other position the run opened is still protected at the broker after SIGTERM.
    for other in opened:
        if other != sid:
            assert v.working_stop(after[other][OrderLeg.STOP_LOSS]) is not None
    assert len(audit_records(project, "daemon.run")) == 1  # one run: the next is the pre-close, hours away


@pytest.mark.timeout(900)
async def test_scheduled_live_run_in_the_daemon_at_the_ibkr_simulator(ibkr: Venue, project: Path) -> None:
    await scheduled_run_opens_trails_and_books_once(ibkr, project)


@pytest.mark.timeout(900)
async def test_scheduled_live_run_in_the_daemon_at_the_capital_simulator(
    capital: Venue, project: Path
) -> None:
    await scheduled_run_opens_trails_and_books_once(capital, project)


async def joe_run_once(project: Path, env: dict[str, str]) -> dict[str, Any]:
    """`joe run --once` as a child of this loop (the simulator runs here); returns its live.json."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(JOE, "run", "--once", cwd=project, env=env, stdout=pipe,
                                                stderr=pipe)  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-4000:]
    line = [ln for ln in out.decode().splitlines() if ln.startswith("Report: ")][-1]
    facts: dict[str, Any] = json.loads((Path(line.removeprefix("Report: ")).parent / "live.json").read_text())
    return facts


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_stale_instrument_gets_no_entry_from_a_scheduled_run_while_the_others_do(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First a plain live run at one simulator shows which instruments today's data signals. Then, at a
    fresh simulator with the same seed, the daemon streams them; one quotes no more on the daemon's
    line (stale), the others tick. The scheduled run takes no entry on the stale one — no order
    reaches the simulator for it — and enters the others."""
    if not gates_accept_a_simulator_port():
        pytest.skip("the live gates do not accept the TWS simulator's port for a DU account yet")
    first = tmp_path / "first"
    (first / "config").mkdir(parents=True)
    (first / "config/execution.yaml").write_text(CONFIG)
    sim = IBKRSimulator(server_version=178, seed=7, account=ACCOUNT, clock=sim_clock())
    await sim.start()
    try:
        facts = await joe_run_once(first, ibkr_env(first, sim))
    finally:
        await sim.stop()
    signalled = sorted({o["symbol"] for o in facts["orders"] if o["leg"] == "entry"})
    assert len(signalled) >= 2, f"today's data signals too few instruments for this test: {signalled}"
    stale, fresh = signalled[0], signalled[1:]

    from joe.simulators.ibkr import session as tws_session

    muted = {stale}
    send_quote = tws_session.Session.send_quote

    def maybe_send(self: Any, req_id: int, symbol: str, with_last: bool = False) -> None:
        if symbol not in muted:
            send_quote(self, req_id, symbol, with_last)

    monkeypatch.setattr(tws_session.Session, "send_quote", maybe_send)
    (project / "config/execution.yaml").write_text(CONFIG)
    sim = IBKRSimulator(server_version=178, seed=7, account=ACCOUNT, clock=sim_clock())
    await sim.start()
    base = {s: sim.prices.quote(s).mid for s in signalled}

    async def tick() -> None:
        n = 0
        while True:
            n += 1
            for s, px in base.items():
                sim.set_price(s, Decimal(str(px)) * (1 + Decimal("0.0001") * (n % 5)))
            if muted and audit_records(project, "daemon.run"):
                muted.clear()  # the daemon has taken its snapshot: the run itself gets every quote
            await asyncio.sleep(0.1)

    ticker = asyncio.create_task(tick())
    d = DaemonProc(project, ibkr_env(project, sim), "ibkr", "--watch", ",".join(signalled), "--stale-after",
                   "1.5", "--clock-start", "2026-12-01T14:44:30Z", schedule=True)  # fmt: skip
    try:
        await d.beat(lambda b: b["status"] == "running" and b["stale"] == [stale], f"{stale} alone stale")
        await until(lambda: bool(audit_records(project, "daemon.run_finished")), "the scheduled run", 600)
        [run] = audit_records(project, "daemon.run")
        assert run["payload"]["no_entries"] == [stale]
        [done] = audit_records(project, "daemon.run_finished")
        assert done["payload"]["rc"] == 0, done["payload"]
        rc, err = await d.terminate()
    finally:
        ticker.cancel()
        if d.proc.poll() is None:
            await d.kill()
        await sim.stop()
    assert rc == 0, err[-4000:]
    at_broker = {o.placed.contract.symbol for o in sim.book.orders.values()}
    assert stale not in at_broker  # no order reached the simulator for the stale instrument
    assert set(fresh) & at_broker  # the others were entered
    # The run refuses it by name when today's signals include it again (the prices the ticker moved
    # can tip a marginal signal, so the second run may not signal it at all).
    refused = [r["payload"]["symbol"] for r in audit_records(project, "run.entry_refused")]
    assert refused in ([stale], [])
