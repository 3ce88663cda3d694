"""`joe sim capital|ibkr [--port N]`: start a local broker simulator that speaks the real wire protocol.

For demos and manual tests. Each prints what to export to point Joe at it (`CAPITAL_API_URL`,
`CAPITAL_STREAM_URL` and the demo credentials; `IBKR_PORT`, `IBKR_ACCOUNT`). `joe sim capital`
accepts the `CAPITAL_API_KEY` / `CAPITAL_IDENTIFIER` / `CAPITAL_PASSWORD` already in the environment,
so an existing configuration logs in unchanged. The simulators listen on 127.0.0.1 only.
A bad or busy port is one line: exit 2 (out of range) or 1 (cannot listen).

`--clock-start ISO` (or JOE_SIM_CLOCK_START) starts the simulator's clock at that instant, running on
at the real rate: its market (trading days, daily bars, market hours, quote times) is then that
instant's, whatever day the host's clock reads. Without it the simulator follows the wall clock.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer

from joe.cli.exit_codes import ExitCode

sim_app = typer.Typer(
    help="Local broker simulators (Capital.com REST+WebSocket, IBKR TWS socket).",
    no_args_is_help=True,
    add_completion=False,
)

CAPITAL_ENV = {
    "api_key": "CAPITAL_API_KEY",
    "identifier": "CAPITAL_IDENTIFIER",
    "password": "CAPITAL_PASSWORD",
}


def _check_port(port: int, option: str = "--port") -> None:
    if not 0 <= port <= 65535:
        typer.echo(f"{option} must be between 0 and 65535 (0 = any free port), not {port}", err=True)
        raise typer.Exit(ExitCode.USAGE)


ClockStart = Annotated[
    str | None,
    typer.Option(
        "--clock-start",
        envvar="JOE_SIM_CLOCK_START",
        help="Start the simulator's clock at this ISO 8601 instant (e.g. 2026-12-01T15:00:00Z); it "
        "runs on at the real rate. Default: the wall clock.",
    ),
]


class _Err:
    """`parse_clock_start`'s console: one line on stderr."""

    def print(self, text: str) -> None:
        typer.echo(text, err=True)


def _clock_start(value: str | None) -> datetime | None:
    from joe.cli.errors import parse_clock_start

    return parse_clock_start(value, _Err(), "--clock-start (JOE_SIM_CLOCK_START)")


def _serve(what: str, port: int, start: Callable[[], None]) -> None:
    try:
        start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "is already in use"
        elif exc.errno == errno.EACCES:
            why = "needs privileges to listen on"
        else:
            why = f"cannot be listened on ({exc.strerror or exc})"
        typer.echo(
            f"{what} simulator: port {port} on 127.0.0.1 {why}; choose another with --port "
            "(--port 0 picks a free one)",
            err=True,
        )
        raise typer.Exit(ExitCode.FAILED) from None


@sim_app.command("capital")
def capital(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 = any free port).")] = 8700,
    seed: Annotated[int, typer.Option(help="Seed of the simulated prices.")] = 1,
    clock_start: ClockStart = None,
) -> None:
    """Serve the Capital.com Open API (REST + streaming WebSocket) until Ctrl-C.

    Accepts the CAPITAL_API_KEY / CAPITAL_IDENTIFIER / CAPITAL_PASSWORD of the environment (each one
    that is set), else the demo credentials it prints.
    """
    _check_port(port)
    start = _clock_start(clock_start)
    from joe.simulators.capital.gate import Login
    from joe.simulators.capital.sim import run_capital_sim

    given = {field: os.environ[name] for field, name in CAPITAL_ENV.items() if os.environ.get(name)}
    login = Login(**given)
    from_env = frozenset(CAPITAL_ENV[f] for f in given)
    _serve(
        "Capital.com",
        port,
        lambda: run_capital_sim(port, seed=seed, login=login, login_from_env=from_env, clock_start=start),
    )


@sim_app.command("ibkr")
def ibkr(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (7497 is TWS's paper port).")] = 7497,
    server_version: Annotated[int, typer.Option(help="TWS server version to speak (157..178).")] = 178,
    seed: Annotated[int, typer.Option(help="Seed of the simulated prices.")] = 1,
    control_port: Annotated[
        int | None,
        typer.Option("--control-port", help="Also serve /_sim/ (requests, orders, price) on this port."),
    ] = None,
    execution_days: Annotated[
        int,
        typer.Option(
            help="Days of executions reqExecutions returns (1: TWS's default, the current day; 7: "
            "the TWS Trade Log setting's maximum)."
        ),
    ] = 1,
    clock_start: ClockStart = None,
) -> None:
    """Serve the TWS API socket protocol (as TWS / IB Gateway would) until Ctrl-C."""
    _check_port(port)
    start = _clock_start(clock_start)
    if not 157 <= server_version <= 178:
        typer.echo("--server-version must be between 157 and 178 (what ib_async negotiates)", err=True)
        raise typer.Exit(ExitCode.USAGE)
    if not 1 <= execution_days <= 7:
        typer.echo("--execution-days must be between 1 and 7 (the TWS Trade Log setting)", err=True)
        raise typer.Exit(ExitCode.USAGE)
    from joe.simulators.ibkr.server import run_ibkr_sim

    if control_port is not None:
        _check_port(control_port, "--control-port")
    _serve(
        "IBKR", port, lambda: run_ibkr_sim(port, server_version, seed, control_port, execution_days, start)
    )
