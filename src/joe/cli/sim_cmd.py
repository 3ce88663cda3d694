"""`joe sim capital|ibkr [--port N]`: start a local broker simulator that speaks the real wire protocol.

For demos and manual tests: point Joe at it with `CAPITAL_API_URL` / `CAPITAL_STREAM_URL` or
`IBKR_HOST` / `IBKR_PORT`. The simulators listen on 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Annotated

import typer

sim_app = typer.Typer(
    help="Local broker simulators (Capital.com REST+WebSocket, IBKR TWS socket).",
    no_args_is_help=True,
    add_completion=False,
)


@sim_app.command("capital")
def capital(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 = any free port).")] = 8700,
    seed: Annotated[int, typer.Option(help="Seed of the simulated prices.")] = 1,
) -> None:
    """Serve the Capital.com Open API (REST + streaming WebSocket) until Ctrl-C."""
    from joe.simulators.capital.sim import run_capital_sim

    run_capital_sim(port, seed=seed)


@sim_app.command("ibkr")
def ibkr(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (7497 is TWS's paper port).")] = 7497,
    server_version: Annotated[int, typer.Option(help="TWS server version to speak (157..178).")] = 178,
    seed: Annotated[int, typer.Option(help="Seed of the simulated prices.")] = 1,
) -> None:
    """Serve the TWS API socket protocol (as TWS / IB Gateway would) until Ctrl-C."""
    if not 157 <= server_version <= 178:
        typer.echo("--server-version must be between 157 and 178 (what ib_async negotiates)", err=True)
        raise typer.Exit(2)
    from joe.simulators.ibkr.server import run_ibkr_sim

    run_ibkr_sim(port, server_version, seed)
