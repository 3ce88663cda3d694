"""A systemd watchdog on the daemon's heartbeat: ``python -m joe.metrics.watchdog -- joe daemon ...``.

Runs the daemon as its child and, every ``WATCHDOG_USEC / 2`` (systemd sets it from ``WatchdogSec=``),
reads the heartbeat the daemon writes to the store: only a fresh heartbeat (younger than the watchdog
interval, status not ``stopped``) is passed on to systemd as ``WATCHDOG=1`` (``READY=1`` at the first
one). A daemon that hangs stops writing heartbeats, the pings stop, and systemd restarts the unit
(``Restart=on-failure``) — the daemon is crash-only, so a restart is always safe. SIGTERM / SIGINT are
forwarded to the daemon; the exit code is the daemon's. Protocol: sd_notify(3), a datagram to
``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract namespace).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

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


def main(argv: list[str]) -> int:
    from joe.config.settings import load_settings
    from joe.store import open_store

    cmd = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not cmd:
        print("usage: python -m joe.metrics.watchdog -- joe daemon [options]", file=sys.stderr)
        return 2
    interval_s = int(os.environ.get("WATCHDOG_USEC", "60000000")) / 1e6
    settings = load_settings()
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    store = open_store(settings.database_url, data_dir=settings.data_dir)
    ready = False
    try:
        while child.poll() is None:
            try:
                ready = watch_once(store, sd_notify, max_age_s=interval_s, ready=ready)
            except Exception as exc:  # an unreadable store is a missed ping, never a crash of the watchdog
                print(f"watchdog: heartbeat unreadable: {type(exc).__name__}: {exc}", file=sys.stderr)
            time.sleep(max(0.5, interval_s / 2))
    finally:
        store.close()
    sd_notify("STOPPING=1")
    return child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
