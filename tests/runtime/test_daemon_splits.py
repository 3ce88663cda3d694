"""Issue 14: the daemon applies a confirmed split to the positions it watches, by itself.

Through the `Daemon` (its quote stream, monitor timer and periodic hooks, as `joe daemon` wires them):
a held long sees a 4-for-1 jump and is held; `splits.csv` in the data folder confirms it; the daemon
adjusts quantity × 4 and levels ÷ 4, audits it, releases the hold, and a real fall through the adjusted
stop then gets the backup exit. A listed ratio that is not the jump's, or no line at all, leaves the
hold (the broker's stop protects).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_daemon import NoExits, Source, State

from joe.core.events import AuditSink
from joe.core.models import Side
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, WatchedPosition
from joe.runtime.daemon import Daemon, DaemonTimings
from joe.runtime.daemon_splits import SplitFollower

DAY = date(2024, 6, 10)


class Audit(AuditSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def record(self, event: str, payload: dict[str, Any] | None = None, **kw: Any) -> None:  # type: ignore[override]
        self.events.append((event, json.loads(json.dumps({**(payload or {}), **kw}, default=str))))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [p for e, p in self.events if e == event]


class Exits(NoExits):
    def __init__(self) -> None:
        self.exits: list[ExitRequest] = []

    def request_exit(self, request: ExitRequest) -> None:
        self.exits.append(request)


async def until(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait (on the event loop, no sleep-and-hope) until `cond`, failing with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def rig(
    tmp_path: Path, side: Side = Side.BUY
) -> tuple[Daemon, PositionMonitor, PriceStream, Exits, Audit, list[str]]:
    stream = PriceStream()
    stream.add_source(Source([]))
    audit, exits, alerts = Audit(), Exits(), []
    monitor = PositionMonitor(stream.instruments, exits, grace_s=0.0, audit=audit)
    follower = SplitFollower.in_data_dir(monitor, audit, tmp_path, lambda: DAY, lambda s, t: alerts.append(t))
    monitor.split_listeners.append(follower.on_suspect)
    stop, tp = ("95", "130") if side is Side.BUY else ("105", "70")
    monitor.add(WatchedPosition("p1", "AAA", side, Decimal(12), Decimal(100), stop=Decimal(stop),
                                take_profit=Decimal(tp)))  # fmt: skip
    d = Daemon(audit=audit, state=State(), stream=stream, monitor=monitor, mode="paper",
               timings=DaemonTimings(heartbeat_s=0.05, tick_s=0.01),
               periodic=[follower.periodic(0.01)])  # fmt: skip
    return d, monitor, stream, exits, audit, alerts


@pytest.mark.parametrize(("side", "ratio", "line", "qty", "stop"), [
    (Side.BUY, 4.0, "4:1", Decimal(48), Decimal("23.75")),
    (Side.SELL, 0.1, "1-for-10", Decimal("1.2"), Decimal(1050)),
    (Side.BUY, 1.5, "", Decimal(18), Decimal(95) / Decimal("1.5")),  # no ratio listed: the jump's
])  # fmt: skip
async def test_a_split_splits_csv_confirms_is_applied_by_the_daemon_and_audited(
    tmp_path: Path, side: Side, ratio: float, line: str, qty: Decimal, stop: Decimal
) -> None:
    d, monitor, stream, exits, audit, alerts = rig(tmp_path, side)
    task = asyncio.create_task(d.run())
    await until(lambda: d.status == "running", "the daemon to run")
    stream.push("AAA", 100.0, 100.2, ts_ns=1)
    stream.flush()  # one batch per quote
    stream.push("AAA", 100.1 / ratio, 100.3 / ratio, ts_ns=2)  # the next session opens split
    stream.flush()  # one batch per quote
    await until(lambda: monitor.split_held("p1"), "the hold")
    await asyncio.sleep(0.05)  # several periodic checks: nothing confirms it yet
    assert monitor.split_held("p1") and monitor.quantity_of("p1") == Decimal(12) and exits.exits == []
    (tmp_path / "splits.csv").write_text(f"symbol,date,ratio\nAAA,{DAY},{line}\n")
    await until(lambda: not monitor.split_held("p1"), "the split to be applied")
    assert monitor.quantity_of("p1") == qty and monitor.stop_of("p1") == stop
    (applied,) = audit.named("daemon.split_applied")
    assert applied["symbol"] == "AAA" and applied["positions"] == ["p1"] and applied["ratio"] == ratio
    assert applied["source"] == "splits.csv row 2"
    assert audit.named("monitor.split_adjusted") and any("adjusted" in a for a in alerts)
    assert exits.exits == []
    # The re-armed backup stop works in post-split units: a real move through the new stop exits.
    through = float(stop) * (0.98 if side is Side.BUY else 1.02)
    stream.push("AAA", through, through, ts_ns=3)
    stream.flush()  # one batch per quote
    await until(lambda: bool(exits.exits), "the backup exit")
    assert [(e.position_id, e.quantity) for e in exits.exits] == [("p1", qty)]
    d.request_stop()
    await task


async def test_a_listed_ratio_that_is_not_the_jump_keeps_the_hold_and_says_so(tmp_path: Path) -> None:
    d, monitor, stream, exits, audit, alerts = rig(tmp_path)
    (tmp_path / "splits.csv").write_text(f"symbol,date,ratio\nAAA,{DAY},2:1\nBBB,{DAY},4:1\n")
    task = asyncio.create_task(d.run())
    await until(lambda: d.status == "running", "the daemon to run")
    stream.push("AAA", 100.0, 100.2, ts_ns=1)
    stream.flush()  # one batch per quote
    stream.push("AAA", 25.0, 25.1, ts_ns=2)  # a 4-for-1's factor; the file says 2-for-1
    stream.flush()  # one batch per quote
    await until(lambda: bool(audit.named("daemon.split_mismatch")), "the mismatch")
    await asyncio.sleep(0.05)
    assert monitor.split_held("p1") and monitor.quantity_of("p1") == Decimal(12)
    assert len(audit.named("daemon.split_mismatch")) == 1 and len(alerts) == 1 and "2-for-1" in alerts[0]
    assert not audit.named("daemon.split_applied") and exits.exits == []
    d.request_stop()
    await task


async def test_a_listed_split_before_any_jump_changes_nothing(tmp_path: Path) -> None:
    """The file alone never adjusts: before the first post-split quote the levels would be wrong."""
    d, monitor, stream, _, audit, _ = rig(tmp_path)
    (tmp_path / "splits.csv").write_text(f"symbol,date,ratio\nAAA,{DAY},4:1\n")
    task = asyncio.create_task(d.run())
    await until(lambda: d.status == "running", "the daemon to run")
    stream.push("AAA", 100.0, 100.2, ts_ns=1)
    stream.flush()  # one batch per quote
    stream.push("AAA", 101.0, 101.2, ts_ns=2)
    stream.flush()  # one batch per quote
    await asyncio.sleep(0.05)
    assert monitor.quantity_of("p1") == Decimal(12) and not audit.named("daemon.split_applied")
    d.request_stop()
    await task


async def test_an_unreadable_splits_file_keeps_the_hold_and_is_audited(tmp_path: Path) -> None:
    d, monitor, stream, _, audit, alerts = rig(tmp_path)
    (tmp_path / "splits.csv").write_text("symbol,date,ratio\nAAA,10/06/2024,4:1\n")
    task = asyncio.create_task(d.run())
    await until(lambda: d.status == "running", "the daemon to run")
    stream.push("AAA", 100.0, 100.2, ts_ns=1)
    stream.flush()  # one batch per quote
    stream.push("AAA", 25.0, 25.1, ts_ns=2)
    stream.flush()  # one batch per quote
    await until(lambda: bool(audit.named("daemon.splits_file_error")), "the file error")
    assert monitor.split_held("p1") and "row 2" in audit.named("daemon.splits_file_error")[0]["error"]
    assert len(alerts) == 1
    d.request_stop()
    await task
