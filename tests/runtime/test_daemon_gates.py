"""The daemon's live hooks and entry gates: the desk starts (reconciles) before any stream and a failed
start stops everything; periodic tasks run; the desk stops before the streams close; a scheduled run
is followed by a reconciliation; entries are refused on a stale, unwatched or closed instrument, while
the safety layer forbids them and while stopping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from joe.core.events import NullAudit
from joe.data.calendars import calendar_for
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.runtime.daemon import Daemon, DaemonTimings
from joe.runtime.schedule import Anchor, Schedule, ScheduledRun, ScheduleRule
from runtime.test_daemon import NoExits, Source, State


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(log: list[str], *, stream: PriceStream | None = None, **kw: Any) -> tuple[Daemon, State]:
    stream = stream or PriceStream()
    stream.add_source(Source(log))
    state = State()
    monitor = PositionMonitor(stream.instruments, NoExits())
    timings = DaemonTimings(heartbeat_s=0.01, tick_s=0.01, settle_s=1.0)
    return Daemon(audit=NullAudit(), state=state, stream=stream, monitor=monitor, mode="live",
                  timings=timings, **kw), state  # fmt: skip


async def test_the_desk_starts_before_the_stream_and_stops_before_it_closes() -> None:
    log: list[str] = []

    async def start() -> None:
        log.append("desk.start (reconcile)")

    async def stop() -> None:
        log.append("desk.stop")

    async def margin() -> None:
        log.append("margin")

    async def reconcile() -> None:
        log.append("reconcile")

    d, _state = make(log, start=start, stop=stop, reconcile=reconcile, periodic=[("margin", 0.01, margin)],
                    watch=["AAA"])  # fmt: skip
    task = asyncio.create_task(d.run())
    while log.count("margin") < 2:
        await asyncio.sleep(0.01)
    d.request_stop("test")
    await asyncio.wait_for(task, 5)
    assert log[:3] == ["desk.start (reconcile)", "stream.start", "subscribe AAA"]
    assert "reconcile" not in log  # the start pass is the desk's; the periodic one waits its period
    assert log[-2:] == ["desk.stop", "stream.stop"]


async def test_a_failed_start_starts_nothing() -> None:
    log: list[str] = []

    async def start() -> None:
        raise ConnectionError("broker unreachable")

    async def stop() -> None:
        log.append("desk.stop")

    d, _state = make(log, start=start, stop=stop)
    with pytest.raises(ConnectionError):
        await d.run()
    assert log == []  # no stream, no tasks, nothing to stop


async def test_a_scheduled_run_is_followed_by_a_reconciliation() -> None:
    log: list[str] = []
    base = datetime(2026, 11, 27, 14, 44, 59, 900_000, tzinfo=UTC)
    t0 = [0.0]

    def clock() -> datetime:
        return base + timedelta(seconds=asyncio.get_running_loop().time() - t0[0])

    async def on_run(run: ScheduledRun) -> None:
        log.append(f"run {run.name}")

    async def reconcile() -> None:
        log.append("reconcile")

    sched = Schedule(calendar_for("XNYS"), [ScheduleRule("after_open", Anchor.OPEN, 15)])
    d, _ = make(log, schedule=sched, on_run=on_run, reconcile=reconcile, clock=clock)
    t0[0] = asyncio.get_running_loop().time()  # the calendar is built: start the clock now
    task = asyncio.create_task(d.run())
    while log.count("reconcile") < 2:
        await asyncio.sleep(0.01)
    d.request_stop("test")
    await asyncio.wait_for(task, 5)
    assert log[:3] == ["reconcile", "stream.start", "run after_open"]  # start pass, then the run
    assert log[3] == "reconcile"  # adopts what the run placed


async def test_entries_refused_on_stale_unwatched_closed_and_by_the_safety_layer() -> None:
    log: list[str] = []
    mono = Clock()
    open_now = {"AAA": True, "BBB": True}
    stream = PriceStream(stale_after_s=10, monotonic=mono, is_open=lambda s, _ns: open_now[s])
    allowed = [True]
    d, _ = make(log, stream=stream, safety_gate=lambda: allowed[0])
    await stream.watch(["AAA", "BBB"], held=True)
    stream.push("AAA", 10.0, 10.1)
    stream.push("BBB", 20.0, 20.1)
    stream.flush()
    assert d.entries_allowed("AAA") and d.entries_allowed("BBB")
    assert not d.entries_allowed("CCC")  # not streamed: no fresh price to enter on
    mono.t += 11
    stream.push("AAA", 10.0, 10.1)
    stream.flush()
    stream.check_staleness()
    assert stream.is_stale("BBB") and not d.entries_allowed("BBB")  # stale: no entries
    assert d.entries_allowed("AAA")
    open_now["AAA"] = False
    assert not d.entries_allowed("AAA")  # market closed
    open_now["AAA"] = True
    allowed[0] = False
    assert not d.entries_allowed("AAA")  # kill switch / HALTED
    allowed[0] = True
    stream.push("BBB", 20.0, 20.1)
    stream.flush()
    assert d.entries_allowed("BBB")  # a fresh quote clears it
    d.request_stop("test")
    assert not d.entries_allowed("AAA")


class FakeBridge:
    def __init__(self, log: list[str], n: int) -> None:
        self.log, self.n = log, n

    def request_exit(self, request: Any) -> None:
        self.log.append(f"desk{self.n}.exit {request.position_id}")

    def request_stop_modify(self, request: Any) -> None:
        self.log.append(f"desk{self.n}.modify {request.position_id}")


class FakeDesk:
    def __init__(self, log: list[str], n: int, monitor: PositionMonitor) -> None:
        self.log, self.n, self.monitor = log, n, monitor
        self.bridge = FakeBridge(log, n)
        monitor.requester = self.bridge

    async def start(self) -> None:
        self.log.append(f"desk{self.n}.start (reconcile first)")

    async def stop(self) -> None:
        self.log.append(f"desk{self.n}.stop")

    async def reconcile(self) -> None:
        self.log.append(f"desk{self.n}.reconcile")


async def test_a_scheduled_run_gets_the_broker_to_itself_then_a_new_desk_reconciles_and_catches_up() -> None:
    """Live: the desk stops (the run uses the same IBKR clientId / session), the run runs, a new desk
    starts and reconciles first; an exit the monitor asked for meanwhile reaches the new desk, once."""
    from joe.core.models import Side
    from joe.execution.protection import ExitReason, ExitRequest
    from joe.runtime.daemon_live import DeskHolder

    log: list[str] = []
    stream = PriceStream()
    monitor = PositionMonitor(stream.instruments, NoExits())
    made = [0]

    async def build() -> tuple[Any, Any]:
        made[0] += 1
        n = made[0]

        async def close() -> None:
            log.append(f"desk{n}.close")

        return FakeDesk(log, n, monitor), close

    holder = DeskHolder(build, NullAudit())  # type: ignore[arg-type]

    async def run(scheduled: Any) -> None:
        log.append("run")
        exit_req = ExitRequest("sig-1", "AAA", Side.SELL, Decimal(1), ExitReason.BACKUP_STOP, 9.0, 0)
        monitor.requester.request_exit(exit_req)  # the monitor's grace timer fired meanwhile

    await holder.start()
    at = datetime(2026, 11, 30, 14, 45, tzinfo=UTC)
    await holder.hand_over(run)(ScheduledRun("after_open", at, at.date()))
    await holder.reconcile()
    await holder.stop()
    assert log == [
        "desk1.start (reconcile first)", "desk1.stop", "desk1.close", "run",
        "desk2.start (reconcile first)", "desk2.exit sig-1", "desk2.reconcile", "desk2.stop", "desk2.close",
    ]  # fmt: skip


async def test_replace_source_resubscribes_what_the_old_connection_carried() -> None:
    log: list[str] = []
    stream = PriceStream()
    stream.add_source(Source(log))
    await stream.start()
    await stream.watch(["AAA", "BBB"], held=True)
    await stream.replace_source(Source(log))
    await stream.stop()
    assert log == ["stream.start", "subscribe AAA,BBB", "stream.stop", "stream.start", "subscribe AAA,BBB",
                   "stream.stop"]  # fmt: skip
    assert stream.held == {"AAA", "BBB"}
