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
    from joe.web.serve import QuietServer, bind, is_loopback, url

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
        server = QuietServer(config)  # the stop signals are handled here, not re-raised by uvicorn
        err.print(f"Joe dashboard on {url(host, bound)} (mode {rt.mode})")

        def stop(signum: int, _frame: object) -> None:
            # SIGTERM, Ctrl-C, or a closed terminal / ssh session (SIGHUP, whose default action killed
            # it mid-request): uvicorn's orderly stop (requests in flight, such as a FLATTEN, finish
            # first), then `web.stopped` and exit 0. A second Ctrl-C does not wait for them.
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True
            server.should_exit = True

        before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in before.items():  # as found (an in-process caller keeps its own)
                signal.signal(sig, handler)
        rt.audit.record("web.stopped", {"port": bound, "in": "web"})
    finally:
        rt.close()
