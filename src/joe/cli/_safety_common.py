"""What `joe kill`, `joe resume` and `joe status` share: start-up with a plain one-line error, and who
is acting (the local user, for the audit record's ``by``)."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from joe.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime


def start(console: Console) -> Runtime:
    """Bootstrap the runtime, or print why not and exit 1."""
    from joe.cli.errors import startup_error
    from joe.runtime.bootstrap import bootstrap

    try:
        return bootstrap()
    except Exception as exc:  # no audit log or store: nothing may change, say why plainly
        console.print(f"[red]Cannot start[/]: {startup_error(exc)}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None


def who(channel: str = "cli") -> str:
    """``cli:<user>``: the channel and the OS user acting."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{channel}:{user}"
