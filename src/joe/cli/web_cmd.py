"""``joe web [--host 127.0.0.1] [--port 8080]``: serve the dashboard, its JSON API, /metrics and /health.

The token is generated on first start into ``<data dir>/web-token`` (0600); the command prints where it
is, never the token itself. A host other than a loopback address is allowed but said loudly: the
dashboard can halt and flatten the account.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from joe.cli._safety_common import start
from joe.cli.exit_codes import ExitCode


def web_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default loopback only).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="TCP port (0 picks a free one).", min=0, max=65535)
    ] = 8080,
) -> None:
    """Serve the dashboard (token in <data dir>/web-token), the JSON API under /api, /metrics and /health."""
    import signal

    import uvicorn

    from joe.web.app import create_app
    from joe.web.auth import TokenFileError, load_or_create_token, token_path
    from joe.web.serve import bind, is_loopback, url

    err = Console(stderr=True, highlight=False)
    rt = start(err)
    try:
        try:
            token, created = load_or_create_token(rt.data_dir)
        except (TokenFileError, OSError) as exc:
            err.print(f"[red]Cannot start the dashboard[/]: {exc}", soft_wrap=True)
            raise typer.Exit(ExitCode.FAILED) from None
        app = create_app(rt, token)
        where = token_path(rt.data_dir)
        try:
            # Bound here, before uvicorn: a busy port is our message and exit code, not uvicorn's
            # exit 3, and nothing is audited as started when nothing listens.
            sock = bind(host, port)
        except OSError as exc:
            err.print(f"[red]Cannot listen on {host}:{port}[/]: {exc.strerror or exc}")
            raise typer.Exit(ExitCode.FAILED) from None
        bound = int(sock.getsockname()[1])
        err.print(
            f"dashboard token {'created in' if created else 'in'} {where} (0600; paste it on the login page)"
        )
        if not is_loopback(host):
            err.print(
                f"[bold red]listening on {host}, not loopback[/]: anyone reaching it with the token can "
                "halt and flatten; put it behind TLS and a firewall"
            )
        rt.audit.record("web.started", {"host": host, "port": bound, "mode": rt.mode})
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        err.print(f"Joe dashboard on {url(host, bound)} (mode {rt.mode})")

        def hang_up(_signum: int, _frame: object) -> None:
            # A closed terminal or ssh session: uvicorn's orderly stop, as on SIGTERM (requests in
            # flight, such as a FLATTEN, finish first); the default action killed it mid-request.
            server.should_exit = True

        signal.signal(signal.SIGHUP, hang_up)
        server.run(sockets=[sock])
        rt.audit.record("web.stopped", {"port": bound, "in": "web"})
    finally:
        rt.close()
