"""`joe` — the command line entry point (`joe.cli.main:app`; the commands are in `joe.cli.app`).

A Ctrl-C while the commands are imported (about half a second) prints one line and exits 130, not a
traceback of whichever import it landed in (`joe.cli.interrupts`); each command handles its own after that.
"""

from __future__ import annotations

from joe.cli.interrupts import quiet_while_starting

_restore_sigint = quiet_while_starting()

from joe.cli.app import app  # noqa: E402  (after the handler: the imports are what it covers)

_restore_sigint()

__all__ = ["app"]

if __name__ == "__main__":
    app()
