"""A systemd watchdog on the daemon's heartbeat: ``python -m joe.metrics.watchdog -- joe daemon ...``.

Runs the daemon as its child (`joe.metrics.supervisor`: a child that dies is restarted, audited and
alerted; a crash loop makes it give up loudly, exit 4) and, every ``WATCHDOG_USEC / 2`` (systemd sets
it from ``WatchdogSec=``), reads the heartbeat the daemon writes to the store: only a fresh heartbeat
(younger than the watchdog interval, status not ``stopped``) is passed on to systemd as ``WATCHDOG=1``
(``READY=1`` at the first one). A daemon that hangs stops writing heartbeats, the pings stop, and
systemd restarts the unit (``Restart=on-failure``) — the daemon is crash-only, so a restart is always
safe. SIGTERM / SIGINT are forwarded to the daemon (no restart follows); the exit code is the
daemon's. Protocol: sd_notify(3), a datagram to ``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract
namespace).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from joe.core.clock import utcnow

if TYPE_CHECKING:
    from joe.store import Store

Notify = Callable[[str], bool]


def sd_notify(message: str, socket_path: str | None = None) -> bool:
    """Send `message` to systemd; False when not run under systemd (no NOTIFY_SOCKET)."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())
    return True


def heartbeat_fresh(store: Store, max_age_s: float, now: datetime | None = None) -> bool:
    from joe.runtime.daemon import heartbeat_health

    h = heartbeat_health(store, now=now or utcnow(), max_age_s=max_age_s)
    return bool(h["running"])


def watch_once(
    store: Store, notify: Notify, max_age_s: float, ready: bool, now: datetime | None = None
) -> bool:
    """One watchdog tick: ping (and say READY the first time) if the heartbeat is fresh. Returns `ready`."""
    if not heartbeat_fresh(store, max_age_s, now):
        return ready
    if not ready:
        notify("READY=1")
    notify("WATCHDOG=1")
    return True


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="python -m joe.metrics.watchdog", description=__doc__.split("\n")[0])
    p.add_argument("--max-restarts", type=int, default=5, help="restarts allowed within --window (5)")
    p.add_argument("--window", type=float, default=600.0, help="seconds of the crash-loop window (600)")
    p.add_argument("--backoff", type=float, default=1.0, help="first restart delay, s; doubles up to 60")
    return p.parse_args(argv[:split]), argv[split + 1 :]


OnEvent = Callable[[str, dict[str, Any]], None]


def _reporter(log: Callable[[str], None]) -> tuple[OnEvent, Any, Callable[[], None]]:
    """(on_event, store or None, close): audit and alert each supervisor event. Without a usable runtime
    (a broken config the daemon itself will report) events still go to stderr."""
    from joe.runtime.bootstrap import bootstrap

    try:
        rt = bootstrap()
    except Exception as exc:
        log(f"watchdog: no audit log or alert channel ({type(exc).__name__}); events go to stderr only")
        return (lambda kind, payload: log(f"watchdog: {kind} {payload}")), None, lambda: None
    last_exit: dict[str, Any] = {}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        try:
            rt.audit.record(kind, payload)
        except Exception as exc:  # the supervisor keeps the daemon running whatever the log does
            log(f"watchdog: audit write failed: {type(exc).__name__}: {exc}")
        if kind == "watchdog.child_exited":
            last_exit.update(payload)
            log(f"watchdog: the daemon (pid {payload['pid']}) {payload['how']}")
            return
        alert = _alert(kind, payload, last_exit)
        if alert is not None:
            _send(rt, alert, log)

    return on_event, rt.store, rt.close


def _alert(kind: str, payload: dict[str, Any], last_exit: dict[str, Any]) -> Any:
    from joe.reporting.alerts import Alert, AlertLevel

    if kind == "watchdog.child_restarted":
        how = last_exit.get("how", "died")
        return Alert(AlertLevel.WARNING, "Joe's daemon was restarted",
                     f"The daemon {how}; the watchdog started it again (pid {payload['pid']}, start "
                     f"{payload['start']}). It reconciles with the broker before trading.",
                     key=f"watchdog-restart-{payload['start']}")  # fmt: skip
    if kind == "watchdog.gave_up":
        return Alert(AlertLevel.CRITICAL, "Joe's daemon is DOWN: the watchdog gave up",
                     f"{payload['reason']}. Nothing restarts it; open positions keep their broker-side "
                     "stops. Check `joe status` and the audit log.", key="watchdog-gave-up")  # fmt: skip
    return None


def _send(rt: Any, alert: Any, log: Callable[[str], None]) -> None:
    import asyncio

    from joe.runtime.push import alert_manager

    async def go() -> None:
        manager = alert_manager(rt)
        try:
            if manager.enabled:
                await manager.send(alert)
        finally:
            await manager.aclose()

    try:
        asyncio.run(go())
    except Exception as exc:  # an alert channel failing never stops the supervision
        log(f"watchdog: alert not delivered: {type(exc).__name__}")


def main(argv: list[str]) -> int:
    from joe.audit import streams
    from joe.audit.redaction import register_secrets_from_env
    from joe.metrics.supervisor import RestartPolicy, Supervisor

    # As every `joe` command: redacted console, and a console that went away (a closed pipe, a hung-up
    # terminal) drops the watchdog's lines instead of raising out of the supervision loop.
    register_secrets_from_env()
    streams.install()
    opts, cmd = _parse(argv)
    if not cmd:
        print("usage: python -m joe.metrics.watchdog [--max-restarts N] [--window S] [--backoff S] -- "
              "joe daemon [options]", file=sys.stderr)  # fmt: skip
        return 2
    try:
        policy = RestartPolicy(max_restarts=opts.max_restarts, window_s=opts.window, backoff_s=opts.backoff)
    except ValueError as exc:
        print(f"watchdog: {exc}", file=sys.stderr)
        return 2
    interval_s = int(os.environ.get("WATCHDOG_USEC", "60000000")) / 1e6

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    on_event, store, close = _reporter(log)
    state = {"ready": False, "next_ping": 0.0}

    def tick() -> None:
        now = time.monotonic()
        if store is None or now < state["next_ping"]:
            return
        state["next_ping"] = now + max(0.5, interval_s / 2)
        try:
            state["ready"] = watch_once(store, sd_notify, max_age_s=interval_s, ready=bool(state["ready"]))
        except Exception as exc:  # an unreadable store is a missed ping, never a crash of the watchdog
            log(f"watchdog: heartbeat unreadable: {type(exc).__name__}: {exc}")

    sup = Supervisor(cmd, policy, on_event, tick=tick)
    # SIGHUP (its terminal closed) too: forwarded, the daemon stops in order; the default would kill the
    # watchdog on the spot.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: sup.stop(s))
    try:
        code = sup.run()
    finally:
        sd_notify("STOPPING=1")
        close()
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
