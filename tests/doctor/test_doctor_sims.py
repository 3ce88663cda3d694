"""`joe doctor --json` end to end: the real CLI against `joe sim ibkr|capital` in another process.

Against each simulator every line passes; a port, account or mode that contradicts the others fails
the `endpoint` line (and the command exits 1), and only that line among the broker lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon_proc import refused_port, sim_process
from joe.core.demo_credentials import CAPITAL_SIM_API_KEY, CAPITAL_SIM_IDENTIFIER, CAPITAL_SIM_PASSWORD

from .conftest import clean_env

JOE = str(Path(sys.executable).with_name("joe"))


@contextmanager
def simulator(kind: str) -> Iterator[int]:
    """`joe sim <kind>` on a port the OS picked; yields that port. The simulator keeps the wall clock:
    the doctor's `clock` line compares its server time with this host's."""
    with sim_process(kind, market_clock=False) as sim:
        yield sim.port


def doctor(project: Path, **env: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [JOE, "doctor", "--json", "--timeout", "15"],
        cwd=project,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip(), out.stderr[-2000:]
    return out.returncode, json.loads(out.stdout)


def lines(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in doc["checks"]}


def failing(doc: dict[str, Any]) -> list[str]:
    return [c["name"] for c in doc["checks"] if c["status"] == "FAIL"]


def test_doctor_against_the_ibkr_simulator(project: Path) -> None:
    with simulator("ibkr") as port:
        code, doc = doctor(project, JOE_BROKER="ibkr", IBKR_PORT=str(port), IBKR_ACCOUNT="DU1234567")
        assert code == 0, doc
        assert doc["ok"] and failing(doc) == []
        by = lines(doc)
        for name in ("endpoint", "account", "broker", "clock", "audit", "database", "credentials"):
            assert by[name]["status"] == "PASS", by[name]
        assert "reachable" in by["broker"]["detail"]
        assert "server time" in by["clock"]["detail"]

        # A live (non-DU) account on the simulator's non-standard port: contradictory.
        code, doc = doctor(project, JOE_BROKER="ibkr", IBKR_PORT=str(port), IBKR_ACCOUNT="U7654321")
        assert code == 1 and failing(doc) == ["endpoint", "account"]
        assert "contradictory" in lines(doc)["endpoint"]["detail"]
        assert lines(doc)["endpoint"]["fix"]

        # A paper account this login does not manage.
        code, doc = doctor(project, JOE_BROKER="ibkr", IBKR_PORT=str(port), IBKR_ACCOUNT="DU9999999")
        assert code == 1 and failing(doc) == ["account"]
        assert "not managed" in lines(doc)["account"]["detail"]

    # The real-money port in paper mode is refused before anything is sent.
    code, doc = doctor(project, JOE_BROKER="ibkr", IBKR_PORT="7496", IBKR_ACCOUNT="U7654321")
    assert code == 1 and failing(doc) == ["endpoint"]
    assert "7496" in lines(doc)["endpoint"]["detail"]
    # Nothing listening: the broker line fails, saying what to start.
    with refused_port() as nobody:
        code, doc = doctor(project, JOE_BROKER="ibkr", IBKR_PORT=str(nobody), IBKR_ACCOUNT="DU1234567")
    assert code == 1 and failing(doc) == ["broker"]
    assert "TWS" in lines(doc)["broker"]["fix"]


def test_doctor_against_the_capital_simulator(project: Path) -> None:
    with simulator("capital") as port:
        creds = {
            "JOE_BROKER": "capital",
            "CAPITAL_API_URL": f"http://127.0.0.1:{port}",
            "CAPITAL_STREAM_URL": f"ws://127.0.0.1:{port}/connect",
            "CAPITAL_API_KEY": CAPITAL_SIM_API_KEY,
            "CAPITAL_IDENTIFIER": CAPITAL_SIM_IDENTIFIER,
            "CAPITAL_PASSWORD": CAPITAL_SIM_PASSWORD,
        }
        code, doc = doctor(project, **creds)
        assert code == 0, doc
        by = lines(doc)
        for name in ("endpoint", "account", "broker", "clock", "credentials"):
            assert by[name]["status"] == "PASS", by[name]
        for secret in (CAPITAL_SIM_PASSWORD, CAPITAL_SIM_API_KEY):  # present, never shown
            assert secret not in json.dumps(doc)

        # Real money asked for (CAPITAL_DEMO=false) while the mode is paper: the mode and the
        # environment disagree.
        code, doc = doctor(project, **creds, CAPITAL_DEMO="false")
        assert code == 1 and failing(doc) == ["endpoint"]
        assert "real money" in lines(doc)["endpoint"]["detail"]

        # A wrong password: the login line fails, the password is not shown.
        code, doc = doctor(project, **{**creds, "CAPITAL_PASSWORD": "not-the-password-xyz"})
        assert code == 1 and failing(doc) == ["broker"]
        assert "not-the-password-xyz" not in json.dumps(doc)
