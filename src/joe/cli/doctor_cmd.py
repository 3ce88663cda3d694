"""``joe doctor [--json] [--broker ...] [--offline]``: is this installation fit to run Joe?

One line per check, PASS / WARN / FAIL with what was found and what to do: Python and package versions,
config valid, trading mode, data folder writable and free disk, database integrity and schema version,
the audit chain (tail included), the market calendar for today, credentials present (never shown), the
daemon's heartbeat, the broker (reachable; port, account and mode agree; clock skew against its server
time) and the alert channels. Exit 0 when nothing FAILs, 1 otherwise (WARNs do not fail).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from joe.cli.doctor_checks import (
    Check,
    FreeSpaceProbe,
    Status,
    check_audit,
    check_calendar,
    check_config,
    check_credentials,
    check_daemon,
    check_data_dir,
    check_database,
    check_disk,
    check_mode,
    check_packages,
    check_python,
    check_web_token,
    disk_usage,
    fail,
)
from joe.cli.exit_codes import ExitCode
from joe.core.clock import utcnow

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime


def run_checks(
    rt: Runtime,
    *,
    clock: Callable[[], datetime] = utcnow,
    free_space: FreeSpaceProbe = disk_usage,
    network: bool = True,
    timeout_s: float = 10.0,
) -> list[Check]:
    """Every check, in order (see `run_checks_async`)."""
    return asyncio.run(
        run_checks_async(rt, clock=clock, free_space=free_space, network=network, timeout_s=timeout_s)
    )


async def run_checks_async(
    rt: Runtime,
    *,
    clock: Callable[[], datetime] = utcnow,
    free_space: FreeSpaceProbe = disk_usage,
    network: bool = True,
    timeout_s: float = 10.0,
) -> list[Check]:
    """Every check, in order. `clock` is the local clock compared with the broker's (injectable);
    `free_space` the disk probe; `network` False skips the broker and alert channels."""
    from joe.cli.doctor_broker import alert_checks, broker_checks

    now = clock()
    local: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("packages", check_packages),
        ("config", lambda: check_config(rt)),
        ("mode", lambda: check_mode(rt)),
        ("data_dir", lambda: check_data_dir(rt.data_dir)),
        ("disk", lambda: check_disk(rt.data_dir, free_space)),
        ("database", lambda: check_database(rt)),
        ("audit", lambda: check_audit(rt)),
        ("calendar", lambda: check_calendar(rt, now)),
        ("credentials", lambda: check_credentials(rt)),
        ("web_token", lambda: check_web_token(rt.data_dir)),
        ("daemon", lambda: check_daemon(rt, now)),
    ]
    checks = [guarded(name, fn) for name, fn in local]
    if network:
        checks += await guarded_async("broker", lambda: broker_checks(rt, clock, timeout_s))
        checks += await guarded_async("alerts", lambda: alert_checks(rt, timeout_s))
    return checks


def _crashed(name: str, exc: Exception) -> Check:
    from joe.audit.redaction import redact_text

    return fail(
        name,
        redact_text(f"the check itself failed: {type(exc).__name__}: {exc}")[:300],
        "an unexpected answer or state: fix what it names and run `joe doctor` again",
    )


def guarded(name: str, fn: Callable[[], Check]) -> Check:
    """`fn()`, or a FAIL line naming the error: every check is a line, never a traceback."""
    try:
        return fn()
    except Exception as exc:
        return _crashed(name, exc)


async def guarded_async(name: str, fn: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """`await fn()`, or one FAIL line naming the error (see `guarded`)."""
    try:
        return await fn()
    except Exception as exc:
        return [_crashed(name, exc)]


def summary(checks: list[Check]) -> dict[str, Any]:
    counts = {s.value: sum(c.status is s for c in checks) for s in Status}
    return {"ok": counts["FAIL"] == 0, "counts": counts, "checks": [c.to_dict() for c in checks]}


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="Check this broker (sim, capital, ibkr) instead of JOE_BROKER."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the broker and alert-channel checks.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per network check.", min=0.1)] = 10.0,
) -> None:
    """Check the installation: each line PASS / WARN / FAIL and what to do. Exit 1 on any FAIL."""
    from joe.cli.errors import startup_error
    from joe.runtime.bootstrap import bootstrap

    if broker is not None and broker not in ("sim", "capital", "ibkr"):
        Console(stderr=True).print(f"--broker must be sim, capital or ibkr, not {broker!r}")
        raise typer.Exit(ExitCode.USAGE)
    try:
        rt = bootstrap(broker=broker)
    except Exception as exc:  # no store or audit log: report what can be known without them
        from joe.config.settings import load_settings

        data_dir = Path(load_settings().data_dir)
        checks = [
            check_python(),
            check_packages(),
            fail("startup", startup_error(exc), "fix the named problem; the lines below may say which"),
            check_data_dir(data_dir),
            check_disk(data_dir),
        ]
    else:
        try:
            checks = run_checks(rt, network=not offline, timeout_s=timeout)
        finally:
            rt.close()
    out = summary(checks)
    if as_json:
        typer.echo(json.dumps(out))
    else:
        _render(Console(highlight=False), checks, out)
    if not out["ok"]:
        raise typer.Exit(ExitCode.FAILED)


_COLOUR = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def _render(c: Console, checks: list[Check], out: dict[str, Any]) -> None:
    width = max(len(ch.name) for ch in checks)
    for ch in checks:
        c.print(f"[{_COLOUR[ch.status]}]{ch.status.value}[/] {ch.name:<{width}}  {ch.detail}", soft_wrap=True)
        if ch.fix:
            c.print(f"     {'':<{width}}  → {ch.fix}", soft_wrap=True)
    n = out["counts"]
    verdict = "[green]healthy[/]" if out["ok"] else "[bold red]NOT healthy[/]"
    c.print(f"{verdict}: {n['PASS']} pass, {n['WARN']} warn, {n['FAIL']} fail")
