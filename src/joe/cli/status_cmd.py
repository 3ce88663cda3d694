"""``joe status [--json]``: mode, trading state and why, breakers, margin, protection locks, positions
with their (broker-side) stops, working orders, today's PnL vs the daily loss limit, audit chain
health, the daemon's heartbeat."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joe.cli._safety_common import start
from joe.cli.exit_codes import ExitCode


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Show whether Joe may trade right now, and why."""
    from joe.runtime.daemon import alive_only_with_a_holder, heartbeat_health
    from joe.safety.control import SafetyContext
    from joe.safety.status import status_snapshot

    err = Console(stderr=True, highlight=False)
    rt = start(err)
    try:
        snap = status_snapshot(rt, SafetyContext.from_runtime(rt))
        snap["daemon"] = alive_only_with_a_holder(heartbeat_health(rt.store), snap["running_pid"])
    except Exception as exc:
        err.print(f"[red]Status failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(snap, default=str))
        return
    _render(Console(highlight=False), snap)


def _render(c: Console, s: dict[str, Any]) -> None:
    ts = s["trading_state"]
    colour = {"active": "green", "reducing": "yellow", "halted": "red"}[ts["state"]]
    # Reasons are why a requested mode fell back to paper; none: paper as asked (it needs no gate), or a
    # live/shadow mode whose every gate passed.
    why = "; ".join(s["mode_reasons"]) or ("as asked: paper needs no gate" if s["mode"] == "paper"
                                           else "every gate passed")  # fmt: skip
    c.print(f"mode: [bold]{s['mode']}[/] ({why})", soft_wrap=True)
    c.print(f"trading: [bold {colour}]{ts['state'].upper()}[/] by {ts['by']}: {ts['reason']} {ts['since']}")
    if kf := s["kill_file"]:
        c.print(f"[red]kill file[/] {kf['path']}: {kf['level']} {kf['reason']}")
    if s.get("broker_flatten_pending"):
        c.print(
            "[red]broker flatten pending[/] (the Joe holding the broker carries it out on its next poll; "
            "a live `joe run --once` or daemon started later does it first): "
            f"{s['broker_flatten_pending']}",
            soft_wrap=True,
        )
    if un := s.get("flatten_unfinished"):
        c.print(
            f"[bold red]flatten NOT FINISHED[/]: started by {un.get('by')} at {un.get('at')} "
            f"(pid {un.get('pid')}, no longer running): positions and working orders may remain - "
            "check the broker, then `joe kill --flatten` again",
            soft_wrap=True,
        )
    if s["paper_flatten_pending"]:
        c.print(f"[yellow]paper flatten pending[/]: {s['paper_flatten_pending']}")
    audit = s["audit"]
    c.print(f"audit chain: {'[green]' if audit['ok'] else '[bold red]'}{audit['summary']}[/]", soft_wrap=True)
    breakers = s["breakers"] or {}
    if breakers:
        for name, b in breakers.items():
            c.print(f"breaker {name}: {b.get('state')} {b.get('reason', '')}")
    else:
        c.print("breakers: none tripped")
    c.print(f"margin: {_margin(s['margin'])}")
    locks = s.get("protection_locks") or []
    if locks:
        for lk in locks:
            what = "everything" if lk["scope"] == "*" else lk["scope"]
            c.print(
                f"[yellow]protection lock[/] {lk['policy']} on {what} until {lk['until']}: {lk['reason']}"
            )
    else:
        c.print("protection locks: none")
    p = s["daily_pnl"]
    if p.get("day") is None:  # a fresh data folder: no equity marked yet, so there is no day to speak of
        c.print(f"today: no equity recorded yet (daily loss limit -{p['daily_loss_limit_pct']}%)")
    else:
        hit = " [bold red]HIT[/]" if p["limit_hit"] else ""
        c.print(
            f"today ({p['day']}): PnL {p['pnl']} ({p['pnl_pct']}%), "
            f"daily loss limit -{p['daily_loss_limit_pct']}%{hit}"
        )
    d = s.get("daemon") or {}
    if d.get("problem"):  # a heartbeat Joe cannot read: said, never a crash hiding the trading state
        c.print(f"daemon: [bold red]UNKNOWN[/] ({d['problem']})", soft_wrap=True)
    elif d.get("heartbeat"):
        alive = ("running" if d["running"] else "GONE: no process holds the data folder (killed?)"
                 if d.get("gone") else "STALE" if d["stale"] else "stopped")  # fmt: skip
        c.print(f"daemon: {alive} (last heartbeat {d['age_s']:.0f}s ago)")
        rec = d["heartbeat"].get("reconciled")
        if rec:
            mark = "" if rec["explained"] else "[bold red]UNEXPLAINED[/] "
            c.print(f"daemon reconciliation: {mark}{rec['summary']} (at {rec['at']})", soft_wrap=True)
        if d["running"]:
            for line in daemon_price_lines(d["heartbeat"]):
                c.print(line, markup=False, soft_wrap=True)
    _prices(c, s.get("prices") or {})
    if s["running_pid"]:
        c.print(f"a Joe process is running on this data folder (pid {s['running_pid']})")
    t = Table(title=f"{len(s['positions'])} open position(s)")
    for col in ("mode", "broker", "symbol", "quantity", "avg_price", "stop", "target"):
        t.add_column(col)
    for row in s["positions"]:
        t.add_row(
            *(str(row[k]) for k in ("mode", "broker", "symbol", "quantity", "avg_price", "stop", "target"))
        )
    c.print(t)
    bp = s.get("broker_positions") or []
    if bp:
        b = Table(title=f"{len(bp)} position(s) at a broker, with their broker-side stops")
        for col in ("mode", "broker", "symbol", "side", "quantity", "stops at the broker", "covered"):
            b.add_column(col)
        for row in bp:
            stops = ", ".join(
                f"{x['quantity']} @ {x['stop_price']} ({x['state']})" for x in row["broker_stops"]
            )
            covered = "[bold red]NO[/]" if row["unprotected"] else "yes"
            b.add_row(
                row["mode"],
                row["broker"],
                row["symbol"],
                row["side"],
                row["quantity"],
                stops or "none",
                covered,
            )
        c.print(b)
    w = Table(title=f"{len(s['working_orders'])} working order(s)")
    for col in ("client_order_id", "symbol", "side", "leg", "quantity", "state"):
        w.add_column(col)
    for row in s["working_orders"]:
        w.add_row(*(str(row[k]) for k in ("client_order_id", "symbol", "side", "leg", "quantity", "state")))
    c.print(w)


def daemon_price_lines(beat: dict[str, Any]) -> list[str]:
    """The running daemon's quotes: which broker each watched instrument's come from now (broker
    failover: "capital (AAPL)"), and the instruments that take no entry, with why."""
    by: dict[str, list[str]] = {}
    for sym, src in sorted((beat.get("price_sources") or {}).items()):
        by.setdefault(src, []).append(sym)
    out = []
    if by:
        groups = "; ".join(f"{src}: {', '.join(syms)}" for src, syms in by.items())
        out.append(f"daemon quotes from: {groups}")
    out += [f"daemon: no entry on {sym}: {why}" for sym, why in sorted((beat.get("no_entry") or {}).items())]
    return out


def _prices(c: Console, p: dict[str, Any]) -> None:
    """Broker failover: brokers down now, and where the latest run's prices came from."""
    for broker, d in (p.get("down") or {}).items():
        why = f"broker {broker} DOWN since {d.get('down_since')}: {d.get('reason', '')}"
        c.print(why, markup=False, soft_wrap=True, style="bold red")
    sources = p.get("sources") or {}
    if not sources:
        return
    by: dict[str, list[str]] = {}
    for sym, src in sorted(sources.items()):
        by.setdefault(src, []).append(sym)
    parts = [f"{src}: {', '.join(syms[:12])}{' …' if len(syms) > 12 else ''}" for src, syms in by.items()]
    c.print(f"prices of run {p.get('run_id')} from: " + "; ".join(parts), markup=False, soft_wrap=True)


def _margin(m: dict[str, Any] | None) -> str:
    if not m:
        return "no reading yet"
    if m.get("unreadable"):
        at = f"{m.get('level', '?')} at {m.get('broker', '?')}"
        return f"{at}: UNREADABLE — {m['unreadable']} (as of {m.get('at')})"
    return (
        f"{m.get('level', '?')} at {m.get('broker', '?')}: cushion {m.get('cushion')} (as of {m.get('at')})"
    )
