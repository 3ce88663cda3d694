"""Memory of `joe daemon` itself streaming 500 instruments: the real CLI process (paper mode, quotes
from the TWS simulator on the wire through ib_async → IBKRQuoteSource → PriceStream → PositionMonitor,
heartbeat, staleness watchdog, audit log, store) against a simulator that steps every price every
50 ms in its own process.

Usage: python bench/daemon_rss.py [--symbols 500] [--seconds 120]

Prints, every 10 s, the daemon's RSS (VmRSS from /proc/<pid>/status, MB), its peak (VmHWM), the quotes
its heartbeat has counted and the load average; at the end the figures against the issue's goal
(< 300 MB with 500 instruments).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

JOE = str(Path(sys.executable).with_name("joe"))
GOAL_MB = 300.0


def status_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def beat(data: Path) -> dict[str, object]:
    try:
        with sqlite3.connect(data / "joe.db", timeout=1) as db:
            row = db.execute("select value from kv_state where key = 'daemon.heartbeat'").fetchone()
    except sqlite3.Error:
        return {}
    return json.loads(row[0]) if row else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory(prefix="joe-daemon-rss-") as tmp:
        work = Path(tmp)
        port_file = work / "sim.port"
        sim = subprocess.Popen([sys.executable, str(here / "stream_rss.py"), "--child", str(port_file),
                                "--seconds", str(args.seconds + 300)])  # fmt: skip
        daemon: subprocess.Popen[bytes] | None = None
        try:
            for _ in range(400):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            port = int(port_file.read_text())
            (work / "config").mkdir()
            (work / "config/execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "CAPITAL_", "TRADING_"))}
            env |= {"JOE_DATA_DIR": str(work / "data"), "JOE_CONFIG": str(work / "config/execution.yaml"),
                    "IBKR_PORT": str(port), "IBKR_ACCOUNT": "DU1234567", "IBKR_CLIENT_ID": "9",
                    "JOE_LOG_LEVEL": "WARNING"}  # fmt: skip
            symbols = ",".join(f"S{i:03d}" for i in range(args.symbols))
            cmd = [JOE, "daemon", "--broker", "ibkr", "--watch", symbols, "--heartbeat", "1",
                   "--no-schedule", "--stale-after", "600"]  # fmt: skip
            t0 = time.monotonic()
            daemon = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)  # fmt: skip
            peak = 0.0
            samples: list[float] = []
            while time.monotonic() - t0 < args.seconds:
                time.sleep(10)
                if daemon.poll() is not None:
                    err = daemon.stderr.read().decode()[-2000:] if daemon.stderr else ""
                    raise SystemExit(f"joe daemon exited {daemon.returncode}: {err}")
                rss, hwm = status_mb(daemon.pid)
                peak = max(peak, hwm)
                samples.append(rss)
                b = beat(work / "data")
                print(
                    f"t={time.monotonic() - t0:5.0f}s  RSS {rss:6.1f} MB (peak {hwm:6.1f})  "
                    f"watched {b.get('watched', '?')}  quotes {b.get('quotes', '?'):>9}  "
                    f"stale {len(b.get('stale', []) or [])}  load {os.getloadavg()[0]:.2f}"  # type: ignore[arg-type]
                )
            b = beat(work / "data")
            print(f"joe daemon streaming {b.get('watched')} instruments for {args.seconds:.0f}s: "
                  f"RSS {samples[-1]:.1f} MB at the end, peak {peak:.1f} MB "
                  f"(goal < {GOAL_MB:.0f} MB: {'met' if peak < GOAL_MB else 'NOT met'}); "
                  f"{b.get('quotes')} quotes")  # fmt: skip
        finally:
            if daemon is not None and daemon.poll() is None:
                daemon.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    daemon.wait(30)
            sim.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sim.wait(5)


if __name__ == "__main__":
    main()
