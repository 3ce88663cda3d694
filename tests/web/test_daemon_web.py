"""`joe daemon --web`: the dashboard served by the daemon process itself, streaming from `joe sim ibkr`.

Same auth rules as `joe web` (no token → 401, a wrong one audited, a cookie mutation without the CSRF
value → 403); /metrics shows the daemon's own per-broker quote count and age; a halt through the API
moves the state the daemon trades by (its heartbeat says no entries); SIGTERM stops both, exit 0; a
busy port refuses to start, said plainly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_proc import audit_events as audit
from daemon_proc import ibkr_simulator
from daemon_proc import read_heartbeat as heartbeat

JOE = str(Path(sys.executable).with_name("joe"))


def wait(cond: Callable[[], Any], what: str, proc: subprocess.Popen[str], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"joe daemon exited {proc.returncode}: {proc.communicate()[1][-3000:]}")
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def env_for(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CAPITAL_", "IBKR_", "TRADING_MODE", "TELEGRAM_", "DISCORD_"))}  # fmt: skip
    env.update(JOE_DATA_DIR=str(project / "data"), JOE_CONFIG=str(project / "execution.yaml"), **extra)
    return env


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.mark.timeout(240)
def test_the_daemon_serves_the_dashboard_with_its_own_state(project: Path) -> None:
    with ibkr_simulator() as sim_port:
        cmd = [JOE, "daemon", "--broker", "ibkr", "--watch", "AAPL,MSFT", "--heartbeat", "0.2",
               "--no-schedule", "--web", "--web-port", "0"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=project, env=env_for(project, IBKR_PORT=str(sim_port)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            started = wait(lambda: audit(project, "web.started") if (project / "data/audit").exists() else
                           None, "web.started", proc)  # fmt: skip
            assert started[0]["payload"]["in"] == "daemon" and started[0]["payload"]["host"] == "127.0.0.1"
            base = f"http://127.0.0.1:{started[0]['payload']['port']}"
            token = (project / "data/web-token").read_text().strip()
            assert (project / "data/web-token").stat().st_mode & 0o777 == 0o600
            wait(lambda: heartbeat(project).get("pid") == proc.pid
                 and heartbeat(project)["sources"]["ibkr"]["quotes"] >= 2, "quotes", proc)  # fmt: skip
            bearer = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=10) as c:
                health = c.get("/health")
                assert health.status_code == 200 and health.json()["daemon"] == "running"
                assert c.get("/api/status").status_code == 401
                assert c.get("/metrics").status_code == 401
                wrong = {"Authorization": "Bearer wrong-token"}
                assert c.get("/api/status", headers=wrong).status_code == 401
                assert audit(project, "web.auth_failed")[-1]["payload"]["path"] == "/api/status"

                status = c.get("/api/status", headers=bearer).json()
                assert status["daemon"]["running"] and status["daemon"]["heartbeat"]["pid"] == proc.pid
                m = samples(c.get("/metrics", headers=bearer).text)
                assert (m.get(("joe_quotes_total", (("broker", "ibkr"),))) or 0) >= 2
                assert m.get(("joe_quote_age_seconds", (("broker", "ibkr"),))) is not None
                assert m[("joe_daemon_up", ())] == 1.0

                # A cookie alone (what a browser attaches cross-site) cannot mutate without the CSRF value.
                c.cookies.set("joe_token", token)
                body = {"reason": "daemon web test", "confirm": "HALT"}
                assert c.post("/api/control/halt", json=body).status_code == 403
                c.cookies.clear()
                assert heartbeat(project)["entries"] is True
                done = c.post("/api/control/halt", json=body, headers=bearer)
                assert done.status_code == 200, done.text
                assert done.json()["trading_state"]["state"] == "halted"
                wait(lambda: heartbeat(project).get("entries") is False, "entries refused", proc, 120)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
    assert token not in err and token not in _out
    assert audit(project, "web.stopped")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=2)
    kills = audit(project, "safety.kill")
    assert [k["payload"]["level"] for k in kills] == ["halt"] and kills[0]["payload"]["by"].startswith("web:")


def test_a_busy_dashboard_port_refuses_to_start_the_daemon(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([JOE, "daemon", "--no-schedule", "--web", "--web-port", str(port)], cwd=project,
                             env=env_for(project), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert f"the dashboard cannot listen on 127.0.0.1:{port}" in " ".join(run.stderr.split())
    assert audit(project, "daemon.refused")
    assert not audit(project, "daemon.started")  # nothing ran: it stops before the loop starts
