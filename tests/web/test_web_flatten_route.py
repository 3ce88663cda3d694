"""Review r16, defects 1 and 3: the dashboard's FLATTEN reaches the Joe that holds the broker.

* two FLATTEN requests at once to a live `joe web` with no daemon (a double click): one flattens at
  the IBKR simulator, the other is refused without claiming a daemon and without leaving a request
  behind; after the resume nothing is pending;
* the shipped compose file's dashboard service resolves the daemon's mode and broker, so its
  FLATTEN is left for the live daemon (``safety.broker_flatten_pending``), never a paper "pending".
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from joe.runtime.bootstrap import bootstrap
from joe.safety.control import SafetyContext, resume
from joe.safety.flatten_route import BROKER_FLATTEN_KEY
from joe.safety.lock import InstanceLock
from joe.simulators.ibkr import IBKRSimulator
from joe.web.app import create_app
from joe.web.auth import load_or_create_token
from market_clock import sim_clock

from .conftest import CLEARED

ROOT = Path(__file__).parents[2]
BODY = {"reason": "get out of everything", "confirm": "FLATTEN"}


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    for k, v in values.items():
        monkeypatch.setenv(k, v)


async def test_double_flatten_on_a_live_dashboard_without_a_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())  # on Joe's market clock
    await sim.start()
    sim.set_price("AAPL", 100)
    (tmp_path / "execution.yaml").write_text("version: 1\nlive:\n  enabled: true\nai:\n  enabled: false\n")
    _env(monkeypatch, {
        "JOE_DATA_DIR": str(tmp_path / "data"), "JOE_CONFIG": str(tmp_path / "execution.yaml"),
        "TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": str(sim.port), "IBKR_ACCOUNT": "DU1234567", "IBKR_CLIENT_ID": "7",
    })  # fmt: skip
    rt = bootstrap()
    try:
        assert rt.mode == "live", rt.decision.reasons
        token = load_or_create_token(rt.data_dir)[0]
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(rt, token)), base_url="http://127.0.0.1"
        ) as c:
            r1, r2 = await asyncio.gather(
                c.post("/api/control/flatten", json=BODY, headers=h, timeout=120),
                c.post("/api/control/flatten", json=BODY, headers=h, timeout=120),
            )
        answers = sorted(
            [
                (r1.status_code, r1.json()),
                (r2.status_code, r2.json()),
            ],
            key=lambda a: a[0],
        )
        (ok, done), (refused, second) = answers
        assert ok == 200 and done["flatten"]["transmitted"] is True and done["flatten"]["flat"] is True
        assert refused == 423
        text = " ".join(second["errors"])
        assert "already running in this process" in text and "this daemon" not in text
        assert rt.store.get_state(BROKER_FLATTEN_KEY) is None  # nothing left for a Joe that does not exist
        assert sim.book.working() == [] and not any(p.qty for p in sim.book.positions.values())
        resume(SafetyContext.from_runtime(rt), reason="checked the account: flat", by="cli:owner")
        assert rt.store.get_state(BROKER_FLATTEN_KEY) is None
    finally:
        rt.audit.close()
        rt.close()
        await sim.stop()


def _service_env(name: str, dotenv: dict[str, str]) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    env = dict(dotenv)  # env_file: .env
    env.update({k: str(v) for k, v in (compose["services"][name].get("environment") or {}).items()})
    return env


@pytest.mark.parametrize("surface", ["joe-web", "joe-telegram"])
def test_compose_surfaces_resolve_the_daemons_mode_and_leave_the_flatten_for_it(
    surface: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "execution.yaml").write_text("version: 1\nlive:\n  enabled: true\nai:\n  enabled: false\n")
    dotenv = {"TRADING_MODE": "live", "IBKR_ACCOUNT": "DU1234567", "IBKR_CLIENT_ID": "1"}
    modes = {}
    for name in ("joe", surface):
        _env(monkeypatch, _service_env(name, dotenv) | {
            "JOE_DATA_DIR": str(tmp_path / "data"), "JOE_CONFIG": str(tmp_path / "execution.yaml"),
        })  # fmt: skip
        rt = bootstrap()
        try:
            modes[name] = (rt.mode, rt.settings.broker)
        finally:
            rt.audit.close()
            rt.close()
    assert modes["joe"] == ("live", "ibkr") and modes[surface] == modes["joe"], modes
    if surface != "joe-web":
        return
    rt = bootstrap()
    try:
        token = load_or_create_token(rt.data_dir)[0]
        with InstanceLock.for_data_dir(tmp_path / "data") as lock:  # "the daemon"
            lock.path.write_text(f"{os.getpid() + 100000}\n")
            with TestClient(create_app(rt, token), base_url="http://127.0.0.1") as c:
                r = c.post("/api/control/flatten", json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 423, r.text
        assert "another Joe" in " ".join(r.json()["errors"])
        assert rt.store.get_state(BROKER_FLATTEN_KEY)["reason"] == BODY["reason"]
    finally:
        rt.audit.close()
        rt.close()
