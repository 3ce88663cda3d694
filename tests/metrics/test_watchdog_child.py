"""The watchdog's child loop end to end: `python -m joe.metrics.watchdog -- joe daemon ...` as its own
process, with systemd's notify socket and the Telegram Bot API faked locally.

Killing the daemon (SIGKILL) → it is started again (a new pid beats), the death and the restart are
audited and the restart is sent to Telegram; SIGTERM to the watchdog → the daemon stops in order, exit 0,
no restart. A daemon that cannot start (its broker refuses connections) → restarted up to the budget,
then the watchdog gives up: exit 4, ``watchdog.gave_up`` audited, a CRITICAL alert, a loud stderr line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_proc import audit_events as audit
from daemon_proc import read_heartbeat as beat
from daemon_proc import refused_port
from telegram_control.fake_bot_api import FakeBotApi

JOE = str(Path(sys.executable).with_name("joe"))
BOT_TOKEN = "123456:watchdog-test-token"
CHAT = 4242


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setblocking(False)
    yield path, s
    s.close()


def env_for(project: Path, bot: FakeBotApi, notify: str, **extra: str) -> dict[str, str]:
    cleared = ("CAPITAL_", "IBKR_", "TRADING_MODE", "TELEGRAM_", "DISCORD_", "JOE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    env.update(JOE_DATA_DIR=str(project / "data"), JOE_CONFIG=str(project / "execution.yaml"),
               TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_CHAT_ID=str(CHAT), TELEGRAM_API_URL=bot.url,
               NOTIFY_SOCKET=notify, WATCHDOG_USEC="2000000", **extra)  # fmt: skip
    return env


async def until(cond: Callable[[], Any], what: str, proc: subprocess.Popen[str], timeout: float = 90) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        got = cond()
        if got:
            return got
        if proc.poll() is not None:
            raise AssertionError(f"watchdog exited {proc.returncode}: {proc.communicate()[1][-3000:]}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def running_daemon(
    project: Path, proc: subprocess.Popen[str], what: str, not_pid: int | None = None
) -> int:
    """The pid in the daemon's heartbeat once it says "running" (a pid other than `not_pid`: a restarted
    daemon), waiting as `until` does."""

    def pid() -> Any:
        b = beat(project)
        return b.get("status") == "running" and b.get("pid") not in (None, not_pid) and b["pid"]

    found: int = await until(pid, what, proc)
    return found


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while proc.poll() is None:  # the fake Bot API runs on this loop: never block it
        assert loop.time() < end, "the watchdog did not exit"
        await asyncio.sleep(0.05)
    _out, err = proc.communicate()
    return proc.returncode, err


@pytest.mark.timeout(240)
async def test_a_killed_daemon_is_restarted_audited_and_alerted(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    (tmp_path / "execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
    bot = FakeBotApi(BOT_TOKEN)
    await bot.start()
    path, sock = notify_socket
    cmd = [sys.executable, "-m", "joe.metrics.watchdog", "--backoff", "0.2", "--",
           JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env_for(tmp_path, bot, path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = await running_daemon(tmp_path, proc, "the first daemon's heartbeat")
        await until(lambda: "READY=1" in received(sock), "READY=1 to systemd", proc)
        os.kill(first, signal.SIGKILL)
        second = await running_daemon(tmp_path, proc, "a restarted daemon", not_pid=first)
        await until(lambda: any("restarted" in m["text"] for m in bot.sent), "the restart alert", proc)
        await until(lambda: "WATCHDOG=1" in received(sock), "pings for the new daemon", proc)
        proc.send_signal(signal.SIGTERM)
        code, err = await finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        await bot.stop()
    assert code == 0, err[-3000:]
    exited = audit(tmp_path, "watchdog.child_exited")
    assert [(e["payload"]["pid"], e["payload"]["how"]) for e in exited] == [(first, "killed by SIGKILL")]
    restarted = audit(tmp_path, "watchdog.child_restarted")
    assert [r["payload"]["pid"] for r in restarted] == [second]
    assert beat(tmp_path)["status"] == "stopped" and beat(tmp_path)["pid"] == second  # orderly, not killed
    assert not audit(tmp_path, "watchdog.gave_up")
    alert = next(m for m in bot.sent if "restarted" in m["text"])
    assert str(alert["chat_id"]) == str(CHAT) and "killed by SIGKILL" in alert["text"]
    assert BOT_TOKEN not in err


@pytest.mark.timeout(240)
async def test_a_crash_loop_makes_the_watchdog_give_up_loudly(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    (tmp_path / "execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
    # A port nobody listens on: the daemon's broker connection fails. Held (bound, not listening) for the
    # whole test: closed at once, another xdist worker's simulator could take it and the daemon then ran.
    with refused_port() as closed:
        bot = FakeBotApi(BOT_TOKEN)
        await bot.start()
        path, _sock = notify_socket
        cmd = [sys.executable, "-m", "joe.metrics.watchdog", "--max-restarts", "2", "--backoff", "0.1", "--",
               JOE, "daemon", "--broker", "ibkr", "--no-schedule"]  # fmt: skip
        env = env_for(tmp_path, bot, path, IBKR_PORT=str(closed))
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        try:
            code, err = await finish(proc, timeout=200)
            await asyncio.sleep(0)
        finally:
            if proc.poll() is None:
                proc.kill()
            await bot.stop()
    assert code == 4, err[-3000:]
    assert len(audit(tmp_path, "watchdog.child_exited")) == 3
    assert len(audit(tmp_path, "watchdog.child_restarted")) == 2
    (gave_up,) = audit(tmp_path, "watchdog.gave_up")
    assert "died 3 times" in gave_up["payload"]["reason"] and "crash loop" in gave_up["payload"]["reason"]
    assert "GAVE UP" in err and "NOT running" in err
    assert any("DOWN" in m["text"] and "crash loop" in m["text"] for m in bot.sent)


# -- hostile review: the watchdog's own life (its console, its terminal, its death) ------------------------


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (reaped by init later) is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _watchdog(project: Path, bot: FakeBotApi, notify: str) -> subprocess.Popen[str]:
    (project / "execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
    cmd = [sys.executable, "-m", "joe.metrics.watchdog", "--backoff", "0.2", "--",
           JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=project, env=env_for(project, bot, notify), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.timeout(240)
async def test_a_watchdog_killed_takes_its_daemon_down_in_order(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """SIGKILL to the watchdog (the OOM killer, `kill -9`) left its daemon orphaned, trading unsupervised
    (no systemd pings, no restarts) and holding the data folder's lock: the next watchdog's daemon was
    refused (exit 3) and the watchdog said "GAVE UP ... Joe is NOT running" while the orphan ran. The
    daemon now gets SIGTERM when its watchdog dies (orderly stop, heartbeat "stopped")."""
    bot = FakeBotApi(BOT_TOKEN)
    await bot.start()
    proc = _watchdog(tmp_path, bot, notify_socket[0])
    daemon = None
    try:
        daemon = await running_daemon(tmp_path, proc, "the daemon's heartbeat")
        proc.kill()
        proc.wait(30)
        loop = asyncio.get_running_loop()
        end = loop.time() + 90
        while not _pid_gone(daemon) and loop.time() < end:
            await asyncio.sleep(0.1)
        assert _pid_gone(daemon), "the daemon outlived its watchdog"
    finally:
        if proc.poll() is None:
            proc.kill()
        if daemon is not None and not _pid_gone(daemon):
            os.kill(daemon, signal.SIGKILL)  # the orphan this test started
        await bot.stop()
    assert beat(tmp_path)["status"] == "stopped"  # in order, not killed
    assert any(e["payload"].get("reason") == "SIGTERM" for e in audit(tmp_path, "daemon.stopping"))


@pytest.mark.timeout(240)
async def test_a_watchdog_hung_up_stops_its_daemon_in_order_and_restarts_nothing(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """SIGHUP (its terminal closed) killed the watchdog on the spot (the default action)."""
    bot = FakeBotApi(BOT_TOKEN)
    await bot.start()
    proc = _watchdog(tmp_path, bot, notify_socket[0])
    daemon = None
    try:
        daemon = await running_daemon(tmp_path, proc, "the daemon's heartbeat")
        proc.send_signal(signal.SIGHUP)
        code, err = await finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        if daemon is not None and not _pid_gone(daemon):
            os.kill(daemon, signal.SIGKILL)
        await bot.stop()
    assert code == 0, err[-3000:]
    assert beat(tmp_path)["status"] == "stopped" and beat(tmp_path)["pid"] == daemon
    assert not audit(tmp_path, "watchdog.child_restarted")


@pytest.mark.timeout(240)
async def test_a_watchdog_whose_console_went_away_still_restarts_its_daemon(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """The watchdog's stderr a closed pipe (`... 2>&1 | tee log`, tee gone): its first log line (the
    daemon died) raised BrokenPipeError and took the watchdog down with the daemon it should restart."""
    bot = FakeBotApi(BOT_TOKEN)
    await bot.start()
    proc = _watchdog(tmp_path, bot, notify_socket[0])
    assert proc.stderr is not None and proc.stdout is not None
    proc.stderr.close()  # the reader is gone
    proc.stdout.close()
    first = second = None
    try:
        first = await running_daemon(tmp_path, proc, "the first daemon's heartbeat")
        os.kill(first, signal.SIGKILL)
        second = await running_daemon(tmp_path, proc, "a restarted daemon", not_pid=first)
        proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while proc.poll() is None and loop.time() < end:
            await asyncio.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in (first, second):
            if pid is not None and not _pid_gone(pid):
                os.kill(pid, signal.SIGKILL)
        await bot.stop()
    assert proc.returncode == 0
    assert beat(tmp_path)["status"] == "stopped" and beat(tmp_path)["pid"] == second
