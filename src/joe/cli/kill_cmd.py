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
    code = ExitCode.OK
    try:
        ctx = SafetyContext.from_runtime(rt)
        by = who()
        out: dict[str, object] = {"level": level.value, "mode": rt.mode}
        if level is KillLevel.FLATTEN and rt.mode in ("live", "shadow"):
            out["flatten"], code = _broker_flatten(rt, ctx, reason, by, console)
            rec = ctx.states.current()
        else:
            rec = kill(ctx, level, reason=reason, by=by)
            if level is KillLevel.FLATTEN:
                # The paper book has no prices of its own: the next paper run closes everything first.
                request_paper_flatten(ctx, reason=reason, by=by)
                out["flatten"] = "pending: the next paper run closes every paper position at its marks"
        out["trading_state"] = rec.to_json()
        asyncio.run(_deliver(rt, ctx))
    except Exception as exc:
        console.print(f"[red]Kill failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(out, default=str))
    else:
        typer.echo(f"Trading is {rec.state.value.upper()} (by {rec.by}: {rec.reason})")
        fl = out.get("flatten")
        if isinstance(fl, str):
            typer.echo(f"flatten {fl}")
        elif isinstance(fl, dict):
            for line in _flatten_lines(fl):
                typer.echo(line)
    if code is not ExitCode.OK:
        raise typer.Exit(code)


def _broker_flatten(
    rt: Any, ctx: Any, reason: str, by: str, console: Console
) -> tuple[dict[str, Any], ExitCode]:
    """Flatten at the broker of the live/shadow mode; (what to print, exit code)."""
    from joe.safety.broker_flatten import Refused, flatten_at_broker

    try:
        result = asyncio.run(flatten_at_broker(rt, ctx, reason=reason, by=by))
    except Refused as e:
        console.print(f"[red]Broker flatten refused[/]: {e}", soft_wrap=True)
        return {"error": str(e), "transmitted": False}, ExitCode.REFUSED
    except Exception as e:  # the state is HALTED already; say what failed and that nothing is known flat
        console.print(
            f"[red]Broker flatten failed[/]: {type(e).__name__}: {e} — trading is HALTED; check the broker "
            "by hand (positions and working orders may remain)",
            soft_wrap=True,
        )
        return {"error": f"{type(e).__name__}: {e}", "transmitted": None}, ExitCode.FAILED
    ok = result["flat"] or not result["transmitted"]
    return result, ExitCode.OK if ok else ExitCode.FAILED


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


async def _deliver(rt: object, ctx: object) -> None:
    from joe.runtime.push import alert_manager
    from joe.safety.control import SafetyContext

    assert isinstance(ctx, SafetyContext)
    manager = alert_manager(rt)  # type: ignore[arg-type]
    try:
        await ctx.alerts.flush(manager if manager.enabled else None)
    finally:
        await manager.aclose()
