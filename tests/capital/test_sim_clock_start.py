"""`joe sim capital|ibkr --clock-start ISO` (or JOE_SIM_CLOCK_START): the simulator's clock starts at that
instant and runs on at the real rate, so its market is that day's whatever day the host's clock reads
(the suite pins its simulators to Joe's market clock this way: tests/market_clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from daemon_proc import sim_process
from joe.cli.main import app

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, NYSE open
# How far a started clock may have run on by the time the test reads it (process start-up on a loaded
# 2-core machine included): far less than the days between START and any real date the suite runs on.
RAN_ON = timedelta(minutes=10)


def _at_start(now: datetime) -> bool:
    return START <= now <= START + RAN_ON


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_capital_simulator_starts_its_clock_at_the_instant_given(how: str) -> None:
    args = ("--clock-start", "2026-12-01T15:00:00Z") if how == "option" else ()
    env_clock = {"JOE_SIM_CLOCK_START": "2026-12-01T15:00:00Z"} if how == "env" else {}
    with sim_process("capital", *args, market_clock=False, env=_env(env_clock)) as sim, httpx.Client() as c:
        served = c.get(f"{sim.url}/api/v1/time").json()["serverTime"]
        ctl = c.get(f"{sim.url}/_sim/clock").json()["now"]
    assert _at_start(datetime.fromtimestamp(served / 1000, UTC)), served
    assert _at_start(datetime.fromisoformat(ctl)), ctl


def test_the_ibkr_simulator_starts_its_clock_at_the_instant_given() -> None:
    args = ("--control-port", "0", "--clock-start", "2026-12-01T15:00:00+00:00")
    with sim_process("ibkr", *args, market_clock=False, env=_env({})) as sim, httpx.Client() as c:
        now = c.get(f"{sim.control}/_sim/clock").json()["now"]
    assert _at_start(datetime.fromisoformat(now)), now


@pytest.mark.parametrize("kind", ["capital", "ibkr"])
def test_a_clock_start_that_is_no_instant_is_a_usage_error_naming_the_option(kind: str) -> None:
    result = CliRunner().invoke(app, ["sim", kind, "--port", "0", "--clock-start", "tuesday"])
    assert result.exit_code == 2, result.output
    assert "--clock-start (JOE_SIM_CLOCK_START) must be an ISO 8601 instant" in result.output
    assert "'tuesday'" in result.output


@pytest.mark.parametrize("kind", ["capital", "ibkr"])
@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "1969-12-31T23:00:00Z"],
)
def test_a_clock_start_out_of_range_is_a_usage_error_not_a_traceback(kind: str, value: str) -> None:
    """Hostile review of bbea66b: year 9999 raised OverflowError (a traceback, exit 1; the IBKR simulator
    served its banner, then failed every connection)."""
    result = CliRunner().invoke(app, ["sim", kind, "--port", "0", "--clock-start", value])
    assert result.exit_code == 2, result.output
    assert "--clock-start (JOE_SIM_CLOCK_START) must be an" in result.output
    assert "Traceback" not in result.output


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "IBKR_", "JOE_SIM_"))}
    return {**keep, **extra}
