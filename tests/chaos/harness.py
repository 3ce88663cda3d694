"""Runs one chaos `Scenario` against a broker simulator and returns what the invariants need.

`JoeProcess` is one Joe process's live order path, wired like the daemon's desk (`runtime.daemon_live.
build_desk`): the store and the hash-chained audit log in a data folder, the safety context (trading
state, alerts), the `OrderManager` with the breaker feed and the lost-protection reaction, and the
`Reconciler` that halts on an unexplained mismatch. A crash drops it without any goodbye; a restart
builds a new one on the same folder (startup reconciliation first). SIGKILL runs the order flow in a
real child process (`kill_child.py`) that kills itself at a point of the flow.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from chaos import timing
from chaos.scenario import Scenario, Step
from chaos.worlds import CapitalWorld, FaultContext, IbkrWorld, World
from joe.audit.anchor import StoreAnchor
from joe.audit.errors import AuditWriteError
from joe.audit.log import AuditLog
from joe.audit.redaction import clear_secrets
from joe.brokers.base import BrokerError, EntriesRefused, InvalidOrder, OrderOutcomeUnknown, SendFailed
from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow
from joe.core.ids import client_order_id
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import Reconciler, ReconcileReport
from joe.safety.alert_audit import AlertingAudit
from joe.safety.audit_disk import entry_gate, guard_audit_disk
from joe.safety.breaker_feed import BreakerFeed
from joe.safety.circuit_breaker import CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.om_protection import alert_bridge, protection_reaction
from joe.store import Store, open_store

# The safety layer is imported above, not in `JoeProcess.open`: a process's start is timed (a
# supervisor's patience) and a first import can take seconds on a loaded machine.
CHILD = Path(__file__).with_name("kill_child.py")
ZERO = Decimal(0)
# What the order path may answer under faults (each a documented outcome, never a crash).
EXPECTED = (EntriesRefused, SendFailed, OrderOutcomeUnknown, InvalidOrder, BrokerError, TimeoutError)
TICK = {"GOLD": Decimal("0.01"), "US100": Decimal("0.1")}


def make_world(sc: Scenario) -> World:
    if sc.broker == "ibkr":
        return IbkrWorld(sc.seed, int(sc.variant), sc.symbols)
    return CapitalWorld(sc.seed, sc.variant == "hedging", sc.symbols)


def on_tick(price: Decimal, symbol: str) -> Decimal:
    t = TICK.get(symbol, Decimal("0.01"))
    return (price / t).to_integral_value(ROUND_DOWN) * t


def bracket(signal: str, symbol: str, qty: int, price: Decimal) -> list[OrderIntent]:
    """A long bracket as the portfolio builds it (`portfolio.intents.bracket_for`): a market entry
    carrying its stop and target, a reduce-only stop 5% below and a reduce-only target 5% above."""
    q = Decimal(qty)
    stop, target = on_tick(price * Decimal("0.95"), symbol), on_tick(price * Decimal("1.05"), symbol)
    return [
        OrderIntent(client_order_id(signal, OrderLeg.ENTRY.value), signal, OrderLeg.ENTRY, symbol,
                    Side.BUY, q, stop_loss=stop, take_profit=target),
        OrderIntent(client_order_id(signal, OrderLeg.STOP_LOSS.value), signal, OrderLeg.STOP_LOSS, symbol,
                    Side.SELL, q, order_type=OrderType.STOP, stop_price=stop, reduce_only=True),
        OrderIntent(client_order_id(signal, OrderLeg.TAKE_PROFIT.value), signal, OrderLeg.TAKE_PROFIT,
                    symbol, Side.SELL, q, order_type=OrderType.LIMIT, limit_price=target, reduce_only=True),
    ]  # fmt: skip


class DiskAuditLog(AuditLog):
    """The audit log on a disk that can fill. Setting `full` fills the disk: from then on an append
    fails as the OS fails it (ENOSPC from the write, wrapped by the log as `AuditWriteError`, nothing
    written) unless it fits in the space the log frees by deleting its reserve (`joe.audit.reserve`),
    and the reserve cannot be made again; clearing `full` frees space (the operator). `full=True` at
    construction: a process that starts on the full disk (a reserve file left by an earlier process
    is still there to be freed; none can be made)."""

    def __init__(self, *args: Any, full: bool = False, **kwargs: Any) -> None:
        self._full = full
        self.free = 0  # bytes left on the full disk
        super().__init__(*args, **kwargs)

    @property
    def full(self) -> bool:
        return self._full

    @full.setter
    def full(self, value: bool) -> None:
        self._full, self.free = value, 0

    def fill_past_reserve(self) -> None:
        """Fill the disk with the reserve already used up: every append fails."""
        super()._free_reserve()
        self.full = True

    def _append_bytes(self, path: Path, data: bytes) -> int:
        if self._full:
            if len(data) > self.free:
                raise AuditWriteError(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            self.free -= len(data)
        return super()._append_bytes(path, data)

    def _free_reserve(self) -> int:
        held = super()._free_reserve()
        self.free += held
        return held

    def _make_reserve(self) -> bool:
        if self._full:  # no room to make one; one already there is there (as `SpaceReserve.ensure`)
            return self._reserve.present()
        return super()._make_reserve()


class JoeProcess:
    """One Joe process's order path on `data_dir` (see the module docstring)."""

    def __init__(
        self, world: World, data_dir: Path, skew: timedelta = timedelta(0), *, disk_full: bool = False
    ) -> None:
        self.world = world
        self.data_dir = data_dir
        self.skew = skew
        self.disk_full = disk_full  # the process starts on a full audit disk
        self.reports: list[ReconcileReport] = []

    def clock(self) -> datetime:
        return utcnow() + self.skew

    async def open(self) -> None:
        self._before = set(asyncio.all_tasks())
        self.store: Store = open_store(data_dir=self.data_dir)
        # A quarter of the real reserve: room for a scenario's exits, and a thousand scenarios' data
        # folders on tmpfs do not hold a gigabyte of memory.
        self.audit = DiskAuditLog(
            self.data_dir / "audit", fsync=False, reserve_bytes=256 * 1024, full=self.disk_full
        )
        self.audit.attach_anchor(StoreAnchor(self.store))
        self.ctx = SafetyContext(self.store, self.audit, self.data_dir, clock=self.clock)
        self._unguard = guard_audit_disk(self.ctx)  # as `BrokerSafety`: a full disk moves to REDUCING
        try:
            self.xc: Any = await self.world.client(self.audit, self.data_dir, self.clock)
        except BaseException:
            self.store.close()
            self.audit.close()
            raise
        safety = ExecutionConfig().safety
        feed = BreakerFeed(CircuitBreaker(self.world.broker, safety.breaker, self.ctx))
        self.om = OrderManager(
            self.xc, self.store, AlertingAudit(self.audit, self.ctx.alerts), mode="live",
            on_alert=alert_bridge(self.ctx, feed), on_event=feed.on_event,
            clock=self.clock, **timing.OM,
        )  # fmt: skip
        self.om.journal.on_unprotected = protection_reaction(self.om, self.ctx, deadline_s=3.0, poll_s=0.05)
        self.om.entry_gate = entry_gate(self.ctx)
        self.rec = Reconciler(self.om, trading_state=self.ctx.states)
        try:
            self.reports.append(await self.rec.start())
        except BaseException:  # a start that fails leaves the manager closed: this process ends
            await self._drop(graceful=True)
            raise

    async def reconcile(self) -> None:
        self.reports.append(await self.rec.reconcile())

    def entries_allowed(self) -> bool:
        from joe.safety.control import entry_allowed

        return entry_allowed(self.ctx)[0]

    async def _drop(self, graceful: bool) -> None:
        if graceful:
            await self.om.stop()
        else:  # a crash: the consumer dies with the process, nothing is flushed or said
            task = self.om._consumer
            if task is not None:
                task.cancel()
        try:
            await self.world.close_client(self.xc)
        finally:
            await self._end_tasks()
            self._unguard()
            self.store.close()
            self.audit.close()

    async def _end_tasks(self) -> None:
        """A process that ends takes its tasks with it (a lost-protection reaction, a reconnect loop):
        in one test process they must not outlive it and write to the next process's store."""
        me = asyncio.current_task()
        mine = [t for t in asyncio.all_tasks() if t not in self._before and t is not me and _is_joes(t)]
        for t in mine:
            t.cancel()
        if mine:
            await asyncio.wait(mine, timeout=2.0)

    async def crash(self) -> None:
        await self._drop(graceful=False)

    async def close(self) -> None:
        await self._drop(graceful=True)


class PaperTwin:
    """The live run's paper twin (`runtime.live_run`: `<data dir>/twin-live.db`): it takes every signal
    Joe is given, filled at once at the model price (the quote's mid at the signal) under the same
    client order id, so `joe report --divergence` can compare intended with actual."""

    def __init__(self, data_dir: Path) -> None:
        self.store = open_store(f"sqlite:///{data_dir / 'twin-live.db'}", data_dir=data_dir)
        self.n = 0

    def take(self, entry: OrderIntent, price: Decimal, broker: str) -> None:
        now = utcnow()
        o = Order(entry, created_at=now)
        o.transition(OrderState.SUBMITTING, ts=now)
        o.transition(OrderState.ACCEPTED, ts=now)
        self.n += 1
        o.apply_fill(Fill(f"twin-{self.n}", entry.client_order_id, entry.symbol, entry.side, entry.quantity,
                          price, now))  # fmt: skip
        self.store.save_order(o, broker=broker, mode="paper")

    def close(self) -> None:
        self.store.close()


@dataclass
class Outcome:
    """What a scenario run left: the final (closed) process's folder, the owner's trades, the notes."""

    scenario: Scenario
    data_dir: Path
    owner_net: dict[str, Decimal] = field(default_factory=dict)
    owner_closed: dict[str, Decimal] = field(default_factory=dict)  # of owner_net: Joe's deals closed
    reports: list[ReconcileReport] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    queued_alerts: list[Any] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # expected refusals/unknowns met on the way
    min_joe_position: Decimal = ZERO  # the lowest Joe-held quantity seen at the broker (< 0: reversed)
    trading_state: str = ""
    child_output: list[str] = field(default_factory=list)
    # While the audit disk was full: the entries Joe was asked for (client order ids) and the exits
    # (signal, whether an order request of Joe's reached the broker during the exit).
    full_entries: list[str] = field(default_factory=list)
    full_exits: list[tuple[str, bool]] = field(default_factory=list)


class Runner:
    def __init__(self, sc: Scenario, world: World, data_dir: Path) -> None:
        self.sc, self.world, self.data_dir = sc, world, data_dir
        self.out = Outcome(sc, data_dir)
        self.signals: dict[str, str] = {}  # signal id -> symbol
        self.pending_kill: str | None = None
        self.pending_partial = False
        self.pending_full = False  # the audit disk fills before the next action
        self.pending_ack_drop = False  # IBKR: the sockets drop right after the next entry's ack
        self.full = False
        self.twin = PaperTwin(data_dir)
        self.skew = timedelta(0)
        self.halted: set[str] = set()

    async def _start(self, disk_full: bool = False) -> JoeProcess:
        """Start a Joe process the way a supervisor does: a start whose reconciliation cannot finish
        (the broker unreachable, an order in doubt) ends the process; it is started again shortly.
        `disk_full`: it starts on the full audit disk."""
        for attempt in range(6):
            joe = JoeProcess(self.world, self.data_dir, self.skew, disk_full=disk_full)
            try:
                await asyncio.wait_for(joe.open(), timeout=120)  # a loaded machine starts slowly
                return joe
            except EXPECTED as e:
                self.out.outcomes.append(f"start {attempt + 1} refused: {type(e).__name__}")
                await asyncio.sleep(timing.RESTART_PAUSE_S)
        raise AssertionError(f"Joe could not start after 6 attempts: {self.out.outcomes[-6:]}")

    async def run(self) -> Outcome:
        self.joe = await self._start()
        try:
            for step in self.sc.steps:
                await self.step(step)
                self._watch_reversal()
            if self.pending_kill is not None:  # no entry followed: the process dies between steps
                await self._restart(crash=True)
            await self.settle()
        finally:
            self._collect()
            self.twin.close()
            await self.joe.close()
        return self.out

    def _collect(self) -> None:
        self.out.owner_net = dict(self.world.owner_net)
        self.out.owner_closed = dict(self.world.owner_closed)
        self.out.reports.extend(self.joe.reports)
        self.out.alerts.extend(self.joe.om.alerts)
        self.out.queued_alerts.extend(getattr(self.joe.ctx.alerts, "pending", []) or [])
        self.out.trading_state = self.joe.ctx.states.current().state.value

    def _watch_reversal(self) -> None:
        pos = self.world.positions()
        for s in self.sc.symbols:
            joes = pos.get(s, ZERO) - self.world.owner_net.get(s, ZERO) + self.world.owner_closed.get(s, ZERO)
            self.out.min_joe_position = min(self.out.min_joe_position, joes)

    def _ctx(self) -> FaultContext:
        entries, stops = {}, {}
        for o in self.joe.store.orders(mode="live"):
            if o.intent.leg is OrderLeg.ENTRY:
                entries[o.intent.symbol] = o.client_order_id
            elif o.intent.leg is OrderLeg.STOP_LOSS and not o.state.is_terminal:
                stops[o.intent.symbol] = o.client_order_id
        return FaultContext(entries, stops, self.joe.clock())

    async def _end(self, crash: bool) -> None:
        self.out.reports.extend(self.joe.reports)
        self.out.alerts.extend(self.joe.om.alerts)
        if crash:
            await self.joe.crash()
        else:
            await self.joe.close()

    async def _restart(self, crash: bool) -> None:
        await self._end(crash)
        self.joe = await self._start()

    async def _quiet(self, seconds: float = 0.05) -> None:
        await asyncio.sleep(seconds)

    async def step(self, step: Step) -> None:
        if self.pending_full and step.kind in ("entry", "exit", "day"):
            self.pending_full = False
            self.full = self.joe.audit.full = True  # the disk fills: every audit append fails
            try:
                await self._step(step)
            finally:  # the operator frees space and resumes; the same process carries on
                self.full = self.joe.audit.full = False
                self._resume_after_full()
            return
        await self._step(step)

    def _resume_after_full(self) -> None:
        """`joe resume`, as the operator does once the disk has room, if the full disk (and nothing
        else) moved the trading state."""
        from joe.safety.audit_disk import BY
        from joe.safety.trading_state import TradingState

        rec = self.joe.ctx.states.current()
        if rec.state is TradingState.REDUCING and rec.by == BY:
            self.joe.ctx.states.resume(by="operator", reason="freed space on the audit disk")
            self.out.outcomes.append("resumed after the audit disk was full")

    async def _step(self, step: Step) -> None:
        a = step.args
        if step.kind == "day":
            await self.day(a["paths"])
        elif step.kind == "entry":
            await self.entry(a["signal"], int(a["qty"]))
        elif step.kind == "exit":
            await self.exit(a["signal"], bool(a["part"]))
        elif step.kind == "fault":
            await self.fault(a["name"], a)
        elif step.kind == "reconcile":
            pass  # the final settle does it

    async def day(self, paths: dict[str, str]) -> None:
        for s in list(self.halted):
            if isinstance(self.world, CapitalWorld):
                self.world.halt(s, False)
        self.halted.clear()
        for symbol, path in paths.items():
            p = self.world.price(symbol)
            orders = self.joe.store.orders(mode="live")
            stops = [o.intent.stop_price for o in orders if o.intent.symbol == symbol and o.intent.stop_price]
            if path == "drift":
                new = p * Decimal("1.01") if len(self.signals) % 2 else p * Decimal("0.99")
            elif path == "gap_down":  # opens through every stop
                new = min([p, *stops]) * Decimal("0.97")
            elif path == "limit_up":  # through every target
                new = p * Decimal("1.08")
            else:  # halt: no trade on the symbol today, the price stands
                self.halted.add(symbol)
                if isinstance(self.world, CapitalWorld):
                    self.world.halt(symbol, True)
                continue
            self.world.set_price(symbol, on_tick(new, symbol))
        await self._quiet(0.15)
        await self._guard(self.joe.reconcile(), "reconcile")  # the daemon's periodic pass

    async def _guard(self, coro: Any, what: str) -> Any:
        expected = (*EXPECTED, AuditWriteError) if self.full else EXPECTED  # refused: the disk is full
        try:
            return await asyncio.wait_for(coro, timeout=20)
        except expected as e:
            self.out.outcomes.append(f"{what}: {type(e).__name__}")
            return None

    async def entry(self, signal: str, qty: int) -> None:
        symbol = signal.rsplit("-", 1)[1]
        self.signals[signal] = symbol
        intents = bracket(signal, symbol, qty, self.world.price(symbol))
        self.twin.take(intents[0], self.world.price(symbol), self.world.broker)
        if self.pending_kill is not None:
            point, self.pending_kill = self.pending_kill, None
            self.joe.audit.full = False  # a disk that fills in this step fills for the restarted process
            await self._end(crash=True)  # the process that will be killed is the next one
            await self._child(point, intents)
            # The restart meets the full disk from its first record (its startup reconciliation
            # included: seed 43's resend of the killed process's entry went out on a disk with room).
            self.joe = await self._start(disk_full=self.full)
            # The restarted process meets the same signal again: one intent, never two orders.
        if not self.joe.entries_allowed():
            self.out.outcomes.append("entry: refused by the trading state")
            return
        if self.pending_partial and isinstance(self.world, IbkrWorld):
            self.pending_partial = False
            price = on_tick(self.world.price(symbol) * Decimal("1.001"), symbol)
            first = intents[0]
            intents[0] = OrderIntent(
                first.client_order_id, first.signal_id, first.leg, first.symbol, first.side,
                first.quantity + 2, OrderType.LIMIT, limit_price=price,
                stop_loss=first.stop_loss, take_profit=first.take_profit,
            )  # fmt: skip
            await self._guard(self.joe.om.submit(intents), "entry")
            await self._quiet(0.3)
            self.world.disarm()
            o = self.joe.om.order(first.client_order_id)
            if o is not None and not o.state.is_terminal:
                await self._guard(self.joe.om.cancel(first.client_order_id), "cancel")
            await self._quiet()
            return
        if self.full:
            self.out.full_entries += [i.client_order_id for i in intents]
        ack_drop = self.pending_ack_drop and isinstance(self.world, IbkrWorld)
        if ack_drop:  # the fills come late; the sockets drop once the entry is acknowledged
            self.pending_ack_drop = False
            self.world.sim.faults.arm("delay_fills", seconds=0.4)
        await self._guard(self.joe.om.submit(intents), "entry")
        if ack_drop:
            self.world.sim.drop_connections()
        await self._quiet()

    async def exit(self, signal: str, part: bool) -> None:
        held = self.joe.om.position_of(signal)
        if held <= 0:
            return
        qty = None
        if part:
            step = Decimal(1) if isinstance(self.world, IbkrWorld) else Decimal("0.01")
            qty = (held / 2 / step).to_integral_value(ROUND_DOWN) * step
            if qty <= 0:
                qty = None
        before = self.world.order_requests()
        await self._guard(self.joe.om.exit(signal, quantity=qty), "exit")
        halted = isinstance(self.world, CapitalWorld) and self.signals.get(signal) in self.halted
        if self.full and not halted:  # sent: the broker may still refuse it (seed 191); on a halted
            # Capital market an exit may be refused before it is sent (seed 206): not the disk's doing
            self.out.full_exits.append((signal, self.world.order_requests() > before))
        await self._quiet()

    async def fault(self, name: str, a: dict[str, Any]) -> None:
        if name == "crash_restart":
            await self._restart(crash=True)
        elif name == "sigkill_restart":
            self.pending_kill = str(a["point"])
        elif name == "clock_skew":
            self.skew = timedelta(seconds=int(a["seconds"]))
            await self._restart(crash=False)  # the new process runs on a skewed clock
        elif name == "owner_trade":
            symbol = str(a["symbol"])
            qty = Decimal(2)
            await self.world.owner_trade(symbol, "BUY", qty)
        elif name == "audit_full":
            self.pending_full = True
        elif name == "disconnect_after_ack":
            self.pending_ack_drop = True
        elif name == "partial_then_cancel":
            self.pending_partial = await self.world.fault(name, a, self._ctx())
        elif not await self.world.fault(name, a, self._ctx()):
            raise AssertionError(f"the {self.world.broker} world has no fault {name!r}")

    async def _child(self, point: str, intents: list[OrderIntent]) -> None:
        payload = json.dumps([_intent_json(i) for i in intents])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        if point == "in_flight" and isinstance(self.world, IbkrWorld):
            self.world.sim.faults.arm("place_latency", seconds=0.8)
        elif point == "in_flight":
            self.world.sim.faults.arm("latency", method="POST", path="/positions", seconds=0.8)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), str(self.data_dir), point, payload, *self.world.child_args(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        finally:  # a child that hangs (or a scenario cancelled meanwhile) must not outlive the step
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        self.out.child_output.append(out.decode() + err.decode())
        if proc.returncode != -9:
            raise AssertionError(
                f"the Joe child was to be SIGKILLed at {point}, it exited {proc.returncode}: "
                f"{err.decode()[-1500:]}"
            )
        await asyncio.sleep(1.0 if point == "in_flight" else 0.1)  # a request in flight lands late

    async def settle(self) -> None:
        """The end of the scenario: the faults stop, the market trades again, Joe reconciles until
        the broker's reports are all in (a restart would do the same)."""
        self.world.disarm()
        self.halted.clear()
        await self._quiet(0.3)
        loop = asyncio.get_running_loop()
        end, passes = loop.time() + 60, 0
        while passes < 2:  # two good passes: the second sees what the first one's actions caused
            # Joe's own work still under way is part of what the passes must see: a pass counts only
            # when none is pending before and after it — a take-profit's replacement waiting for an
            # exit or a reconciliation, then sent (seed 701: sent after the last pass, it filled with
            # Joe gone); a lost-protection reaction retrying a refused stop until its deadline, then
            # exiting or halting (seed 812: judged 1 s into its 3 s, the position was still naked).
            while self._joe_busy() and loop.time() < end:
                await asyncio.sleep(0.05)
            try:
                await asyncio.wait_for(self.joe.reconcile(), timeout=30)
                passes = 0 if self._joe_busy() and loop.time() < end else passes + 1
            except (BrokerError, TimeoutError) as e:  # still reconnecting (a nightly reset refuses for
                # a while); a pass slower than its timeout on a loaded machine (seeds 11, 15, 19, 26)
                if loop.time() > end:
                    self.out.outcomes.append(f"settle: {type(e).__name__}")
                    return
            await self._quiet(0.15)

    def _joe_busy(self) -> bool:
        """Joe's own work is under way: a take-profit replacement or a lost-protection reaction."""
        reaction = self.joe.om.journal.on_unprotected
        return self.joe.om.refits_pending or bool(getattr(reaction, "pending", None))


_JOE_SRC = str(Path(__import__("joe").__file__).parent)
_SIM_SRC = str(Path(_JOE_SRC) / "simulators")


def _is_joes(task: asyncio.Task[Any]) -> bool:
    """A task of Joe's own code (not a simulator's, not a client library's)."""
    code = getattr(task.get_coro(), "cr_code", None)
    name = code.co_filename if code is not None else ""
    return name.startswith(_JOE_SRC) and not name.startswith(_SIM_SRC)


def _intent_json(i: OrderIntent) -> dict[str, Any]:
    return {
        "client_order_id": i.client_order_id, "signal_id": i.signal_id, "leg": i.leg.value,
        "symbol": i.symbol, "side": i.side.value, "quantity": str(i.quantity),
        "order_type": i.order_type.value,
        **{k: str(getattr(i, k)) for k in ("limit_price", "stop_price", "stop_loss", "take_profit")
           if getattr(i, k) is not None},
        "reduce_only": i.reduce_only,
    }  # fmt: skip


_active_lock = threading.Lock()
_active = 0


def _enter() -> None:
    """A scenario starts. The first of a process's scenarios running at once forgets the secrets the
    earlier ones registered (their brokers' logins, every rotated session token): a Joe process starts
    with none, and a worker that ran sixty scenarios would otherwise rebuild a matcher of thousands
    of secret forms at every login and run it over every audit line (the full run's CPU doubled)."""
    global _active
    with _active_lock:
        if _active == 0:
            clear_secrets()
        _active += 1


def _leave() -> None:
    global _active
    with _active_lock:
        _active -= 1


async def run_scenario(sc: Scenario, data_dir: Path) -> tuple[Outcome, World]:
    """Run `sc` on a fresh simulator; returns the outcome and the (stopped) world for the checks."""
    _enter()
    try:
        return await _run_scenario(sc, data_dir)
    finally:
        _leave()


async def _run_scenario(sc: Scenario, data_dir: Path) -> tuple[Outcome, World]:
    world = make_world(sc)
    await world.start()
    try:
        out = await Runner(sc, world, data_dir).run()
    except BaseException:
        await world.stop()
        raise
    return out, world
