"""``joe resume --reason ...``: a human moves trading back to ACTIVE (persisted, audited)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from joe.cli._safety_common import start, who
from joe.cli.exit_codes import ExitCode


def resume_command(
    reason: Annotated[str, typer.Option("--reason", help="Why it is safe to trade again (audited).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Resume trading after a kill, a breaker, a margin or protection halt. Refused while data/KILL exists."""
    from joe.safety.control import SafetyContext, resume
    from joe.safety.trading_state import ResumeRefused

    console = Console(stderr=True, highlight=False)
    rt = start(console)
    try:
        rec = resume(SafetyContext.from_runtime(rt), reason=reason, by=who())
    except ResumeRefused as exc:
        console.print(f"[red]Refused[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    except Exception as exc:
        console.print(f"[red]Resume failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps({"trading_state": rec.to_json()}))
    else:
        typer.echo(f"Trading is {rec.state.value.upper()} (by {rec.by}: {rec.reason})")
