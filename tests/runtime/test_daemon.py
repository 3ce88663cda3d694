"""The daemon skeleton: start order (reconcile first), heartbeat, schedule, orderly stop; and
`joe daemon` as a separate process (paper, and streaming from `joe sim ibkr`) exiting 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon_proc import ibkr_simulator
from joe.core.events import NullAudit
from joe.data.calendars import calendar_for
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, StopModify
from joe.runtime.daemon import HEARTBEAT_KEY, Daemon, DaemonTimings, heartbeat_health
from joe.runtime.schedule import Anchor, Schedule, ScheduledRun, ScheduleRule
from joe.store import open_store

JOE = str(Path(sys.executable).with_name("joe"))


class State:
    def __init__(self) -> None:
        self.kv: dict[str, Any] = {}
        self.writes = 0

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.kv.get(key, default)

    def set_state(self, key: str, value: Any) -> None:
        self.writes += 1
        self.kv[key] = json.loads(json.dumps(value))


class Source:
    name = "fake"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def bind(self, stream: PriceStream) -> None: ...

    async def start(self) -> None:
        self.log.append("stream.start")

    async def stop(self) -> None:
        self.log.append("stream.stop")

    async def subscribe(self, symbols: Sequence[str]) -> None:
        self.log.append(f"subscribe {','.join(symbols)}")

    async def unsubscribe(self, symbols: Sequence[str]) -> None: ...


class NoExits:
    def request_exit(self, request: ExitRequest) -> None: ...

    def request_stop_modify(self, request: StopModify) -> None: ...


def rig(log: list[str], **kw: Any) -> tuple[Daemon, State, NullAudit]:
    stream = PriceStream()
    stream.add_source(Source(log))
    state, audit = State(), NullAudit()

    async def reconcile() -> None:
        log.append("reconcile")

    monitor = PositionMonitor(stream.instruments, NoExits())
    timings = DaemonTimings(heartbeat_s=0.01, tick_s=0.01)
    d = Daemon(audit=audit, state=state, stream=stream, monitor=monitor, mode="paper", reconcile=reconcile,
               timings=timings, **kw)  # fmt: skip
    return d, state, audit


async def test_reconcile_first_then_stream_heartbeat_and_an_orderly_stop() -> None:
    log: list[str] = []
    d, state, audit = rig(log, watch=["AAA"])
    task = asyncio.create_task(d.run())
    while state.writes < 3:
        await asyncio.sleep(0.01)
    assert log == ["reconcile", "stream.start", "subscribe AAA"]
    assert state.kv[HEARTBEAT_KEY]["status"] == "running" and state.kv[HEARTBEAT_KEY]["watched"] == 1
    assert d.entries_allowed("AAA")
    d.request_stop("test")
    assert not d.entries_allowed("AAA")  # at once, before anything settles
    await asyncio.wait_for(task, 60)  # bounded, not timed: an orderly stop of fakes
    assert log[-1] == "stream.stop"
    assert state.kv[HEARTBEAT_KEY]["status"] == "stopped"
    kinds = [r[0] for r in audit.records]
    assert kinds[0] == "daemon.started" and kinds[-2:] == ["daemon.stopping", "daemon.stopped"]
    health = heartbeat_health(state, datetime.now(UTC) + timedelta(hours=1))
    assert health["stale"] is False and health["running"] is False  # stopped cleanly is not stale


def test_a_silent_heartbeat_is_reported_stale() -> None:
    state = State()
    assert heartbeat_health(state)["heartbeat"] is None
    state.set_state(HEARTBEAT_KEY, {"ts": "2026-11-30T12:00:00+00:00", "status": "running"})
    now = datetime(2026, 11, 30, 12, 0, 20, tzinfo=UTC)
    assert heartbeat_health(state, now, max_age_s=30) | {"heartbeat": None} == {
        "running": True, "stale": False, "age_s": 20.0, "heartbeat": None
    }  # fmt: skip
    assert heartbeat_health(state, now + timedelta(seconds=11), max_age_s=30)["stale"] is True


async def test_scheduled_run_happens_and_stop_lets_it_settle() -> None:
    log: list[str] = []
    # The daemon's clock stands 0.2 s before 15 min after the open until the run starts (the scheduler
    # waits those 0.2 s itself), then reads the run's minute. Before: it ran on with the wall clock from
    # when the test started it, and a pause of 0.2 s before the scheduler first read it (a loaded
    # machine) put "now" past 14:45: the after_open run was never due and the test failed after 20 s.
    now = [datetime(2026, 11, 27, 14, 44, 59, 800_000, tzinfo=UTC)]

    def clock() -> datetime:
        return now[0]

    ran: list[ScheduledRun] = []
    finished: list[str] = []
    stop_asked = asyncio.Event()  # the run lasts until the stop is asked: the stop comes mid-run

    async def on_run(run: ScheduledRun) -> None:
        ran.append(run)
        now[0] = run.at  # its minute has come
        await stop_asked.wait()
        await asyncio.sleep(0.2)
        finished.append(run.name)

    sched = Schedule(calendar_for("XNYS"), [ScheduleRule("after_open", Anchor.OPEN, 15),
                                            ScheduleRule("pre_close", Anchor.CLOSE, -15)])  # fmt: skip
    d, state, _audit = rig(log, schedule=sched, on_run=on_run, clock=clock)
    task = asyncio.create_task(d.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120  # bounded: a schedule that never fires fails here instead of hanging
    while not ran:
        assert loop.time() < deadline, "the after_open run never started (120 s)"
        await asyncio.sleep(0.01)
    d.request_stop("test")  # mid-run: the run is allowed to finish (bounded)
    stop_asked.set()
    await asyncio.wait_for(task, 60)
    assert [r.name for r in ran] == ["after_open"] and finished == ["after_open"]
    assert ran[0].at == datetime(2026, 11, 27, 14, 45, tzinfo=UTC)
    assert state.kv[HEARTBEAT_KEY]["status"] == "stopped"


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "IBKR_", "TRADING_MODE"))}
    env.update(JOE_DATA_DIR=str(project / "data"), JOE_CONFIG=str(project / "config/execution.yaml"), **extra)
    return env


def _heartbeat(project: Path) -> dict[str, Any] | None:
    store = open_store(f"sqlite:///{project / 'data' / 'joe.db'}", data_dir=project / "data")
    try:
        beat = store.get_state(HEARTBEAT_KEY)
    finally:
        store.close()
    return beat if isinstance(beat, dict) else None


def _wait_beat(project: Path, proc: subprocess.Popen[str], pred: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"joe daemon exited {proc.returncode}: {proc.communicate()[1][-3000:]}")
        if (project / "data" / "joe.db").exists():
            beat = _heartbeat(project)
            if beat is not None and pred(beat):
                return beat
        time.sleep(0.2)
    raise AssertionError("no matching heartbeat")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err


async def test_a_stop_whose_audit_write_fails_still_stops_the_daemon() -> None:
    """Hostile review: `request_stop` marked the daemon stopping, then audited ``daemon.stopping``; a
    failed audit write (a full disk, the audit folder gone) raised before the stop event was set — the
    loop swallowed it in the signal callback, the daemon never stopped, and every later SIGTERM returned
    early ("already stopping"): only SIGKILL ended it (seen: an orphaned test daemon whose data folder
    was deleted ignored SIGTERM)."""
    log: list[str] = []
    d, state, audit = rig(log, watch=["AAA"])
    real = audit.record

    def record(kind: str, *a: Any, **k: Any) -> Any:
        if kind == "daemon.stopping":
            raise OSError(28, "No space left on device")
        return real(kind, *a, **k)

    audit.record = record  # type: ignore[method-assign]
    task = asyncio.create_task(d.run())
    while state.writes < 3:
        await asyncio.sleep(0.01)
    d.request_stop("SIGTERM")  # a signal handler's callback: it must not raise
    await asyncio.wait_for(task, 60)  # bounded, not timed: an orderly stop of fakes
    assert state.kv[HEARTBEAT_KEY]["status"] == "stopped" and log[-1] == "stream.stop"


def test_joe_daemon_paper_process_beats_and_exits_0_on_sigterm(project: Path) -> None:
    cmd = [JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=project, env=_env(project), stdout=pipe, stderr=pipe, text=True)
    try:
        beat = _wait_beat(project, proc, lambda b: b["status"] == "running")
        assert beat["mode"] == "paper" and beat["pid"] == proc.pid
    finally:
        rc, err = _stop(proc)
    assert rc == 0, err[-3000:]
    assert _heartbeat(project)["status"] == "stopped"  # type: ignore[index]
    audit = "".join(f.read_text() for f in (project / "data/audit").glob("*.jsonl"))
    for kind in ("daemon.started", "daemon.stopping", "daemon.stopped"):
        assert kind in audit


def test_joe_daemon_stops_orderly_when_its_terminal_hangs_up(project: Path) -> None:
    """A closed terminal or ssh session (SIGHUP) used to kill `joe daemon` on the spot (the default
    action): no orderly stop, entries not stopped first, the heartbeat left saying "running". It is
    the console going away: the daemon stops as on SIGTERM and exits 0."""
    cmd = [JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=project, env=_env(project), stdout=pipe, stderr=pipe, text=True)
    try:
        _wait_beat(project, proc, lambda b: b["status"] == "running")
        proc.send_signal(signal.SIGHUP)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert _heartbeat(project)["status"] == "stopped"  # type: ignore[index]
    audit = project / "data/audit"
    events = [json.loads(ln) for f in audit.glob("*.jsonl") for ln in f.read_text().splitlines()]
    stopping = [e for e in events if e["event"] == "daemon.stopping"]
    assert stopping and "SIGHUP" in json.dumps(stopping[0]), stopping


def test_joe_daemon_streams_from_the_ibkr_simulator(project: Path) -> None:
    with ibkr_simulator() as port:
        proc = subprocess.Popen(
            [JOE, "daemon", "--broker", "ibkr", "--watch", "AAPL,MSFT", "--heartbeat", ".2", "--no-schedule"],
            cwd=project, env=_env(project, IBKR_PORT=str(port)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            beat = _wait_beat(project, proc, lambda b: b["status"] == "running" and b["quotes"] >= 2)
            assert beat["watched"] == 2 and beat["stale"] == []
        finally:
            rc, err = _stop(proc)
    assert rc == 0, err[-3000:]
    assert _heartbeat(project)["status"] == "stopped"  # type: ignore[index]


def test_clock_from_starts_at_the_instant_and_runs_at_its_rate() -> None:
    from joe.core.clock import clock_from

    t = [100.0]
    start = datetime(2026, 12, 1, 14, 44, 56, tzinfo=UTC)
    clock = clock_from(start, monotonic=lambda: t[0])
    assert clock() == start
    t[0] += 4.5
    assert clock() == start + timedelta(seconds=4.5)
    fast = clock_from(datetime(2026, 12, 1), rate=60, monotonic=lambda: t[0])  # naive: UTC
    t[0] += 1
    assert fast() == datetime(2026, 12, 1, 0, 1, tzinfo=UTC)


def test_clock_start_is_refused_against_a_real_endpoint_and_must_be_an_instant(project: Path) -> None:
    """A shifted schedule on a real account would trade at the wrong hours: only paper or a local
    simulator may rehearse with --clock-start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "CAPITAL_", "TRADING_"))}
    base = [JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]
    bad = subprocess.run([*base, "--clock-start", "tomorrow 9am"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--clock-start must be an ISO 8601 instant" in bad.stderr
    real = {
        **env,
        "TRADING_MODE": "shadow",
        "JOE_BROKER": "ibkr",
        "IBKR_PORT": "7497",
        "IBKR_ACCOUNT": "DU1234567",
    }  # a paper account at a real TWS port: not a simulator
    out = subprocess.run([*base, "--broker", "ibkr", "--clock-start", "2026-12-01T14:44:56Z"], cwd=project,
                         env=real, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 3, out.stderr[-2000:]
    assert "--clock-start is for paper or a local simulator" in out.stderr
    kinds = [json.loads(ln)["event"] for f in (project / "data/audit").glob("*.jsonl")
             for ln in f.read_text().splitlines()]  # fmt: skip
    assert "daemon.refused" in kinds and "daemon.started" not in kinds


# -- review r1012 finding 6: an unreadable heartbeat is reported, the cut-off follows the interval -----


class _OneBeat:
    def __init__(self, v: object) -> None:
        self.v = v

    def get_state(self, key: str) -> object:
        assert key == HEARTBEAT_KEY
        return self.v

    def set_state(self, key: str, v: object) -> None:
        self.v = v


@pytest.mark.parametrize(
    "beat",
    [
        {"status": "running"},  # ts missing
        {"status": "running", "ts": "yesterday"},
        {"status": "running", "ts": "2026-12-01T10:00:00"},  # naive
        {"status": "running", "ts": 1764583200},  # a number
        ["not", "a", "record"],
    ],
)
def test_unreadable_heartbeat_is_a_stale_problem_not_an_exception(beat: object) -> None:
    out = heartbeat_health(_OneBeat(beat), now=datetime(2026, 12, 1, 11, tzinfo=UTC))  # type: ignore[arg-type]
    assert out["stale"] and not out["running"] and out["problem"]


@pytest.mark.parametrize(
    ("every", "age", "stale"),
    [(60, 45, False), (60, 179, False), (60, 181, True), (0.2, 29, False), (0.2, 31, True), (None, 31, True)],
)
def test_stale_cut_off_follows_the_heartbeat_interval(every: float | None, age: float, stale: bool) -> None:
    now = datetime(2026, 12, 1, 11, tzinfo=UTC)
    beat = {"status": "running", "ts": (now - timedelta(seconds=age)).isoformat(), "every_s": every}
    out = heartbeat_health(_OneBeat(beat), now=now)  # type: ignore[arg-type]
    assert out["stale"] is stale and out["running"] is not stale


def test_joe_status_names_an_unreadable_heartbeat_and_still_shows_the_trading_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from joe.cli.main import app
    from joe.store import open_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'data/joe.db'}", data_dir=tmp_path / "data")
    store.set_state(HEARTBEAT_KEY, {"status": "running", "ts": "yesterday"})
    store.close()
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 0, out.output
    assert "UNKNOWN" in out.output and "yesterday" in out.output and "trading" in out.output.lower()


def test_runs_missed_while_no_daemon_ran_are_reported_not_caught_up() -> None:
    """Review r1012 finding 3: a daemon down over scheduled runs says so at start (audited
    daemon.runs_missed, caught_up false); none of them is run late."""
    from joe.config.schema import ScheduleConfig
    from joe.runtime.daemon_runs import schedule_from_config

    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York
    d, state, _audit = rig([], schedule=schedule_from_config(ScheduleConfig()), schedule_clock=lambda: now)
    state.set_state(HEARTBEAT_KEY, {"ts": "2026-12-01T14:30:00+00:00", "status": "running"})  # killed Tue
    missed = [(r.name, r.at.isoformat()) for r in d.missed_runs()]
    assert missed == [
        ("after_open", "2026-12-01T14:45:00+00:00"),
        ("pre_close", "2026-12-01T20:45:00+00:00"),
        ("pre_open_scan", "2026-12-02T14:00:00+00:00"),
        ("after_open", "2026-12-02T14:45:00+00:00"),
    ]
    state.set_state(HEARTBEAT_KEY, {"ts": "2026-12-02T14:59:00+00:00", "status": "stopped"})
    assert d.missed_runs() == []
    state.set_state(HEARTBEAT_KEY, {"ts": "garbage"})
    assert d.missed_runs() == []  # unreadable: nothing claimed
