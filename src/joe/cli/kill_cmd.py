"""``joe kill [--reduce | --halt | --flatten] --reason ...``: pull the kill switch (persisted, audited).

Exit codes: 0 done (live flatten: flat); 1 failed or a live flatten left something (listed); 3 the
broker flatten was refused (another Joe holds the data folder; the state is HALTED regardless)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from joe.cli._safety_common import start, who
from joe.cli.exit_codes import ExitCode


def kill_command(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    reduce: Annotated[bool, typer.Option("--reduce", help="Exits only (REDUCING).")] = False,
    halt: Annotated[bool, typer.Option("--halt", help="No new orders (HALTED); the default.")] = False,
    flatten: Annotated[
        bool,
        typer.Option(
            "--flatten",
            help="HALTED, then close every position reduce-only and cancel working orders (live: at the "
            "broker, through the OrderManager; shadow: reports, transmits nothing; paper: the next run).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Stop trading now. Survives restarts; only `joe resume --reason ...` undoes it."""
    from joe.safety.control import SafetyContext
    from joe.safety.kill_switch import KillLevel
    from joe.safety.operator import deliver_alerts, pull_kill_switch

    console = Console(stderr=True, highlight=False)
    if sum((reduce, halt, flatten)) > 1:
        console.print("choose one of --reduce, --halt, --flatten")
        raise typer.Exit(ExitCode.USAGE)
    if not reason.strip():
        console.print("--reason must say why (it is recorded in the audit log)")
        raise typer.Exit(ExitCode.USAGE)
    level = KillLevel.REDUCE if reduce else KillLevel.FLATTEN if flatten else KillLevel.HALT
    rt = start(console)
    try:
        ctx = SafetyContext.from_runtime(rt)
        outcome = pull_kill_switch(rt, ctx, level, reason=reason, by=who())
        for e in outcome.errors:
            console.print(f"[red]{e}[/]", soft_wrap=True)
        asyncio.run(deliver_alerts(rt, ctx))
    except Exception as exc:
        console.print(f"[red]Kill failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        rt.close()
    rec = outcome.state
    if as_json:
        typer.echo(json.dumps(outcome.to_json(), default=str))
    else:
        typer.echo(f"Trading is {rec.state.value.upper()} (by {rec.by}: {rec.reason})")
        fl = outcome.flatten
        if isinstance(fl, str):
            typer.echo(f"flatten {fl}")
        elif isinstance(fl, dict):
            for line in _flatten_lines(fl):
                typer.echo(line)
    if outcome.code != ExitCode.OK:
        raise typer.Exit(outcome.code)


def _flatten_lines(fl: dict[str, Any]) -> list[str]:
    if "error" in fl:
        return [f"flatten: NOT DONE — {fl['error']}"]
    r = fl["report"]
    left = (
        f"positions left: {r['left_positions'] or 'none'}; working orders left: {r['left_orders'] or 'none'}"
    )
    if not fl["transmitted"]:
        return [
            f"flatten ({fl['mode']} at {fl['broker']}): NOTHING TRANSMITTED — shadow mode never sends orders",
            f"at the broker now: {left}",
        ]
    head = "FLAT" if fl["flat"] else "INCOMPLETE"
    lines = [
        f"flatten ({fl['mode']} at {fl['broker']}): {head} after {r['attempts']} attempt(s); "
        f"closed {len(r['closed'])}, cancelled {len(r['cancelled'])}",
        left,
    ]
    lines += [f"error: {e}" for e in r["errors"][:10]]
    return lines
