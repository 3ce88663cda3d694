"""``joe kill [--reduce | --halt | --flatten] --reason ...``: pull the kill switch (persisted, audited)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from joe.cli._safety_common import start, who
from joe.cli.exit_codes import ExitCode


def kill_command(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    reduce: Annotated[bool, typer.Option("--reduce", help="Exits only (REDUCING).")] = False,
    halt: Annotated[bool, typer.Option("--halt", help="No new orders (HALTED); the default.")] = False,
    flatten: Annotated[
        bool, typer.Option("--flatten", help="HALTED, then close every position reduce-only, cancel orders.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Stop trading now. Survives restarts; only `joe resume --reason ...` undoes it."""
    from joe.safety.control import SafetyContext, kill
    from joe.safety.kill_switch import KillLevel
    from joe.safety.paper_venue import request_paper_flatten

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
        by = who()
        rec = kill(ctx, level, reason=reason, by=by)
        out: dict[str, object] = {"level": level.value, "trading_state": rec.to_json()}
        if level is KillLevel.FLATTEN:
            # The paper book has no prices of its own: the next paper run closes everything first.
            request_paper_flatten(ctx, reason=reason, by=by)
            out["flatten"] = "pending: the next paper run closes every paper position at its marks"
        asyncio.run(_deliver(rt, ctx))
    except Exception as exc:
        console.print(f"[red]Kill failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"Trading is {rec.state.value.upper()} (by {rec.by}: {rec.reason})")
        if "flatten" in out:
            typer.echo(f"flatten {out['flatten']}")


async def _deliver(rt: object, ctx: object) -> None:
    from joe.runtime.push import alert_manager
    from joe.safety.control import SafetyContext

    assert isinstance(ctx, SafetyContext)
    manager = alert_manager(rt)  # type: ignore[arg-type]
    try:
        await ctx.alerts.flush(manager if manager.enabled else None)
    finally:
        await manager.aclose()
