"""The one rule `joe run` and `joe daemon` share on a configuration Joe cannot read: nothing starts.

An invalid `config/execution.yaml` value (a wrong type, an out-of-range limit, malformed YAML) still
resolves the mode (to paper, said loudly), but no run and no daemon trades on settings the user did not
choose: the command prints the first problem (each names its key and file), audits `<command>.refused`
and exits 2 (a usage error: fix the file and run again). An unknown key is invalid too (a typo of a
limit must not leave the default in force unnoticed). Notes that are not invalid (no config file, an
empty one: the built-in defaults, said) do not stop anything. A supervisor should not restart on exit 2
(`joe.metrics.watchdog` gives up at once on it; README "Running the daemon").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from joe.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime


def invalid_config(rt: Runtime) -> list[object]:
    """The configuration problems that make the file unusable (not mere notes)."""
    return [p for p in rt.config_problems if getattr(p, "invalid", True)]


def refuse_invalid_config(rt: Runtime, console: Console, command: str) -> None:
    """Exit 2 (audited ``<command>.refused``, the runtime closed) when the configuration is invalid;
    return otherwise."""
    invalid = invalid_config(rt)
    if not invalid:
        return
    rt.audit.record(f"{command}.refused", {"reason": "invalid config", "problems": [str(p) for p in invalid]})
    rt.close()
    console.print(
        f"[red]Invalid config[/]: {invalid[0]} — fix the file and run again; nothing was traded.",
        soft_wrap=True,
    )
    raise typer.Exit(ExitCode.USAGE)
