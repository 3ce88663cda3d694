"""``joe kill [--reduce | --halt | --flatten] --reason ...``: pull the kill switch (persisted, audited).

Exit codes: 0 done (live flatten: flat); 1 failed or a live flatten left something (listed); 3 the
broker flatten was refused (another Joe holds the data folder; the state is HALTED regardless).

When the store or the audit log cannot be opened (PostgreSQL down, a damaged ``joe.db``, a full
disk) the kill is never lost: the ``KILL`` file is written at the level asked (an empty one, HALT,
when not even one block is free), which every Joe on the data folder honours on its next check, and
the answer says so with exit 1 (review r1119, finding 3)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from joe.cli._safety_common import who
from joe.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from joe.safety.kill_switch import KillLevel


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
    import signal

    # A closed terminal or ssh session (SIGHUP) must not stop the kill switch half-way — a flatten with
    # some positions closed and the rest not, its in-progress marker left behind: the command finishes
    # (its console output is then dropped, see joe.audit.streams). SIGTERM/Ctrl-C still stop it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from joe.runtime.bootstrap import bootstrap

    try:
        rt = bootstrap()
    except Exception as exc:  # no store / audit log: the kill still leaves its trace (the KILL file)
        _kill_without_store(console, level, reason, exc)
        raise typer.Exit(ExitCode.FAILED) from None
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


def _kill_without_store(console: Console, level: KillLevel, reason: str, exc: Exception) -> None:
    """Write the ``KILL`` file (never weaker than one already there) and say what happened."""
    from pathlib import Path

    from joe.audit.redaction import redact_text
    from joe.cli.errors import startup_error
    from joe.config.settings import load_settings
    from joe.safety.control import write_fallback_kill_file
    from joe.safety.kill_switch import kill_file_path, read_kill_file

    console.print(f"[red]Cannot open the store or the audit log[/]: {startup_error(exc)}", soft_wrap=True)
    try:
        data_dir = Path(load_settings().data_dir)
    except Exception:
        data_dir = Path("data")
    why = redact_text(reason.strip()) or "no reason given"
    try:
        existing = read_kill_file(data_dir)
    except Exception:
        existing = None
    if existing is not None and existing.level.state.severity >= level.state.severity:
        path: Path | None = existing.path
    else:
        path = write_fallback_kill_file(data_dir, level, f"{why} (store down; by {who()})")
    found = read_kill_file(data_dir) if path is not None else None
    if found is None:
        kf = kill_file_path(data_dir)
        console.print(
            f"[bold red]{level.value.upper()} NOT RECORDED[/]: the kill file {kf} could not be written "
            f"either. Stop Joe (SIGTERM) now, or `touch {kf}` as a user who may write there",
            soft_wrap=True,
        )
        return
    said = found.level.value
    if found.level is not level:
        said += f" (asked {level.value}: no room for more)"
    console.print(
        f"[bold yellow]{level.value.upper()} by kill file[/]: {found.path} says {said}; every Joe on "
        f"{data_dir} honours it on its next check (a running one within seconds; a live flatten is carried "
        "out by the Joe holding the broker). Nothing is in the store or the audit log until they open: fix "
        "them, then check `joe status`; remove the file and `joe resume --reason ...` to trade again",
        soft_wrap=True,
    )
