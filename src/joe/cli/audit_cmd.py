"""``joe audit``: prove the audit chain is whole (``verify``) and show the latest records (``tail``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joe.audit.health import stored_anchor
from joe.audit.log import tail, verify
from joe.cli.exit_codes import ExitCode

audit_app = typer.Typer(
    help="Inspect the append-only, hash-chained audit log (data/audit/).", no_args_is_help=True
)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Audit directory (default: $JOE_DATA_DIR/audit, JOE_DATA_DIR defaults to 'data')."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def default_audit_dir() -> Path:
    """``$JOE_DATA_DIR/audit`` (``data/audit`` when JOE_DATA_DIR is unset)."""
    return Path(os.environ.get("JOE_DATA_DIR") or "data") / "audit"


def _existing_dir(directory: Path | None) -> Path:
    """The audit folder to read. A `--dir` that is not a folder is a bad argument (exit 2): reading it
    as "no records" would pass off a typo as an empty, valid chain."""
    path = directory or default_audit_dir()
    if directory is not None and not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        typer.echo(f"--dir {path} {what}: give the audit folder (e.g. data/audit)", err=True)
        raise typer.Exit(ExitCode.USAGE)
    return path


@audit_app.command("verify")
def verify_cmd(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Check every record's hash, the prev chain, seq continuity, timestamps and the tail against the
    store's anchor; exit 1 at the first break. Exit 2 when `--dir` is not a folder."""
    path = _existing_dir(directory)
    try:
        anchor = stored_anchor(path.parent)
    except Exception as e:  # an unreadable store: verify the chain alone, and say so
        Console(stderr=True, highlight=False).print(
            f"[yellow]warning[/] store unreadable, tail not checked against its anchor: {e}"
        )
        anchor = None
    report = verify(path, anchor)
    if as_json:
        typer.echo(json.dumps({"directory": str(path), **report.to_dict()}))
    else:
        console = Console(highlight=False)
        for w in report.warnings:
            console.print(f"[yellow]warning[/] {w.file}:{w.line}: {w.reason} ({w.detail})")
        if report.first_break is not None:
            b = report.first_break
            console.print(
                f"[bold red]BROKEN[/] {path / b.file}:{b.line}: {b.reason}"
                + (f" ({b.detail})" if b.detail else "")
            )
            console.print(f"{report.records} records verified before the break.")
        elif not report.files:
            console.print(f"no audit records in {path}")
        else:
            console.print(
                f"[green]OK[/] audit chain whole: {report.records} records in {len(report.files)} file(s), "
                f"last seq {report.last_seq} ({path})"
            )
            if anchor is None:
                console.print("[yellow]no store anchor[/]: a deleted tail would not be detected")
            else:
                console.print(f"tail anchored in the store at seq {anchor.seq}")
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("tail")
def tail_cmd(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records to show.")] = 20,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the last N audit records (oldest first)."""
    records = tail(_existing_dir(directory), n)
    if as_json:
        for rec in records:
            typer.echo(json.dumps(rec, separators=(",", ":")))
        return
    table = Table(title=f"last {len(records)} audit records")
    for col in ("seq", "ts", "event"):
        table.add_column(col, no_wrap=True)
    for col in ("ids", "payload"):
        table.add_column(col, overflow="fold")
    for rec in records:
        table.add_row(
            str(rec["seq"]), rec["ts"], rec["event"], _compact(rec["ids"]), _compact(rec["payload"])
        )
    Console().print(table)


def _compact(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
