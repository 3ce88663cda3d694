"""The suite's lock folder (tests/conftest.py gives each test its own JOE_LOCK_DIR).

CI hazard: the account locks live in one machine-wide folder (/run/lock/joe-locks). Several tests trade
the same IBKR paper account at the same address (127.0.0.1:4002/DU1234567: the flatten-route and
halt tests, `joe kill --flatten` live); under `pytest -n 2` two of them at once, or any other suite on the
machine, and the second was refused ("another Joe ... trades this account") instead of doing what it tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from joe.runtime.bootstrap import bootstrap
from joe.safety.broker_flatten import flatten_at_broker
from joe.safety.control import SafetyContext
from joe.safety.lock import InstanceLock, account_lock_path


async def test_a_test_trading_an_account_another_worker_holds_is_not_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (another xdist worker's test, another suite) holds the machine-wide lock of the
    account this test trades. Before: this test's flatten was Refused. Now its own lock folder is used."""
    (data_dir.parent / "execution.yaml").write_text("version: 1\nlive:\n  enabled: true\n")
    live = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": "4002", "IBKR_ACCOUNT": "DU1234567"}
    for k, v in (live | {"IBKR_HOST": "127.0.0.1"}).items():
        monkeypatch.setenv(k, v)
    ours = os.environ.get("JOE_LOCK_DIR")
    monkeypatch.delenv("JOE_LOCK_DIR", raising=False)
    machine_wide = account_lock_path("ibkr", "127.0.0.1:4002/DU1234567")  # what every other process sees
    if ours is not None:
        monkeypatch.setenv("JOE_LOCK_DIR", ours)
    machine_wide.parent.mkdir(parents=True, exist_ok=True)
    rt = bootstrap()
    tries: list[int] = []

    async def down(_rt: object) -> Any:
        tries.append(1)
        raise ConnectionRefusedError("gateway restarting")

    try:
        with InstanceLock(machine_wide, label="another worker's test"):
            ctx = SafetyContext.from_runtime(rt)
            with pytest.raises(ConnectionRefusedError):  # it reached the broker: not refused by the lock
                await flatten_at_broker(rt, ctx, reason="x", by="test", pause_s=0, connect=down)
        assert tries
    finally:
        rt.audit.close()
        rt.close()
