"""`joe daemon`: the long-running process (streams, monitor, schedule, heartbeat, orderly stop), and with
``--web`` the dashboard served by the same process (`joe.web.serve.EmbeddedWeb`: same runtime, same
safety state, same token and auth rules as `joe web`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from joe.cli.config_gate import refuse_invalid_config
from joe.cli.exit_codes import ExitCode


def daemon_command(
    broker: Annotated[str, typer.Option(help="Quote stream: sim (none), capital or ibkr.")] = "sim",
    watch: Annotated[str, typer.Option(help="Comma-separated symbols to stream from the start.")] = "",
    stale_after: Annotated[
        float | None,
        typer.Option(help="Seconds without a quote (market open) → stale [daemon.stale_after_s]."),
    ] = None,
    heartbeat: Annotated[
        float | None, typer.Option(help="Seconds between heartbeats in the store [daemon.heartbeat_s].")
    ] = None,
    schedule: Annotated[bool, typer.Option(help="Run the pipeline on daemon.schedule.")] = True,
    clock_start: Annotated[
        str | None,
        typer.Option(
            help="Rehearsal: the schedule's clock starts at this UTC instant (ISO 8601, e.g. "
            "2026-12-01T14:44:50Z) and runs at wall speed. Paper or a local simulator only."
        ),
    ] = None,
    web: Annotated[
        bool, typer.Option("--web/--no-web", help="Also serve the dashboard, /api, /metrics and /health.")
    ] = False,
    web_host: Annotated[
        str, typer.Option("--web-host", help="The dashboard's address (default loopback only).")
    ] = "127.0.0.1",
    web_port: Annotated[
        int,
        typer.Option("--web-port", help="The dashboard's TCP port (0 picks a free one).", min=0, max=65535),
    ] = 8080,
) -> None:
    """Run until SIGTERM/SIGINT: stream quotes, watch positions, write a heartbeat; then stop entries,
    settle, persist and exit 0 (open positions keep their broker-side stops)."""
    console = Console(stderr=True, log_path=False)
    if broker not in ("sim", "capital", "ibkr"):
        console.print(f"--broker must be sim, capital or ibkr, not {broker!r}")
        raise typer.Exit(ExitCode.USAGE)
    if (stale_after is not None and stale_after <= 0) or (heartbeat is not None and heartbeat <= 0):
        console.print("--stale-after and --heartbeat must be positive numbers of seconds")
        raise typer.Exit(ExitCode.USAGE)
    from joe.cli.errors import parse_clock_start

    start_at = parse_clock_start(clock_start, console)
    from joe.cli.errors import startup_error
    from joe.runtime.bootstrap import bootstrap

    try:
        rt = bootstrap(broker=broker)
    except Exception as exc:
        console.print(f"[red]Cannot start[/]: {startup_error(exc)}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    if rt.decision.fell_back:
        console.print(f"[yellow]Paper mode[/]: {'; '.join(rt.decision.reasons)}", soft_wrap=True)
    for cp in rt.config_problems:
        console.print(f"[yellow]config[/]: {cp}", soft_wrap=True)
    refuse_invalid_config(rt, console, "daemon")  # as `joe run`: nothing trades on an unreadable config
    if start_at is not None and rt.mode != "paper" and not _rehearsal_venue(rt, broker, console):
        # A shifted schedule would trade at the wrong hours on a real account: rehearsals only.
        rt.audit.record("daemon.refused", {"reason": "--clock-start against a real broker endpoint"})
        rt.close()
        console.print(f"[red]Refused[/]: --clock-start is for paper or a local simulator; {rt.mode} mode "
                      f"here talks to a real {rt.decision.broker} endpoint", soft_wrap=True)  # fmt: skip
        raise typer.Exit(ExitCode.REFUSED)
    from joe.safety.lock import AlreadyRunning, hold_instance

    try:
        lock = hold_instance(rt)  # one Joe per data folder and, live/shadow, per broker account
    except AlreadyRunning as exc:
        rt.audit.record("daemon.refused", {"reason": str(exc), "holder_pid": exc.pid})
        rt.close()
        console.print(f"[red]Refused[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    from joe.runtime.run_once import close_interrupted_runs

    # The data folder's sole holder, its runs one at a time: a run left "running" belongs to a dead
    # process (a SIGKILL or power loss stopped it, or this daemon's killed child). Closed at start and
    # after each child that did not exit cleanly; no later run would, each being the daemon's child.
    def close_dead() -> None:
        for gone in close_interrupted_runs(rt):
            console.print(f"[yellow]Interrupted[/]: run {gone} was stopped half-way (marked interrupted)")

    symbols = [s.strip() for s in watch.split(",") if s.strip()]
    try:
        if lock.sole_holder:
            close_dead()
        listen = (web_host, web_port) if web else None
        after_child = close_dead if lock.sole_holder else None
        asyncio.run(_run(rt, broker, symbols, stale_after, heartbeat, schedule, console, start_at, listen,
                         after_child))  # fmt: skip
    except WebRefused as exc:
        rt.audit.record("daemon.refused", {"reason": str(exc)})
        console.print(f"[red]Refused[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    except Exception as exc:
        rt.audit.record("daemon.failed", {"error": f"{type(exc).__name__}: {exc}"})
        console.print(f"[red]Daemon failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        lock.release()
        rt.close()
    console.print("daemon stopped")


def _rehearsal_venue(rt: Any, broker: str, console: Console) -> bool:
    """True when the daemon's broker is Joe's local simulator, as its wire says (asked once, before the
    daemon starts): only then may `--clock-start` shift the schedule of a live or shadow daemon. A
    broker that cannot be reached cannot prove it is the simulator: refused."""
    if rt.decision.simulator:
        return True
    if broker == "sim":
        return False
    from joe.runtime.daemon_sources import venue_is_simulator

    try:
        return asyncio.run(venue_is_simulator(rt, broker))
    except Exception as exc:
        console.print(f"--clock-start: cannot ask {broker} whether it is Joe's simulator: "
                      f"{type(exc).__name__}: {exc}", soft_wrap=True)  # fmt: skip
        return False


class WebRefused(Exception):
    """The dashboard could not listen where asked (the daemon does not start without it)."""


async def _start_web(rt: Any, ctx: Any, listen: tuple[str, int], on_control: Any, console: Console) -> Any:
    from joe.web.app import create_app
    from joe.web.auth import load_or_create_token, token_path
    from joe.web.serve import EmbeddedWeb, is_loopback

    host, port = listen
    token, created = load_or_create_token(rt.data_dir)
    app = create_app(rt, token, ctx, on_control=on_control)
    try:
        web = await EmbeddedWeb.start(app, host, port)
    except (OSError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WebRefused(f"the dashboard cannot listen on {host}:{port}: {why}") from None
    where = token_path(rt.data_dir)
    console.print(f"dashboard token {'created in' if created else 'in'} {where} (0600; paste it on the "
                  "login page)")  # fmt: skip
    if not is_loopback(host):
        console.print(f"[bold red]dashboard listening on {host}, not loopback[/]: anyone reaching it with "
                      "the token can halt and flatten; put it behind TLS and a firewall")  # fmt: skip
    rt.audit.record("web.started", {"host": host, "port": web.port, "mode": rt.mode, "in": "daemon"})
    console.print(f"Joe dashboard on {web.url} (in the daemon, mode {rt.mode})")
    return web


async def _run(
    rt: object,
    broker: str,
    symbols: list[str],
    stale_after: float | None,
    heartbeat: float | None,
    schedule: bool,
    console: Console,
    clock_start: Any = None,
    web_listen: tuple[str, int] | None = None,
    after_child: Callable[[], object] | None = None,
) -> None:
    from joe.core.clock import clock_from
    from joe.execution.position_monitor import PositionMonitor
    from joe.execution.price_stream import PriceStream
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.daemon import Daemon, DaemonTimings
    from joe.runtime.daemon_runs import pipeline_runner, schedule_from_config
    from joe.runtime.daemon_sources import UnroutedExits, attach_source, market_hours, open_quote_source
    from joe.safety.control import SafetyContext
    from joe.safety.daemon_gate import DaemonSafety

    assert isinstance(rt, Runtime)
    cfg = rt.config.daemon
    stale_s = stale_after if stale_after is not None else cfg.stale_after_s
    hours = market_hours(broker)
    rehearsal = clock_from(clock_start) if clock_start is not None else None

    def rehearsed_open(symbol: str, _now_ns: int) -> bool:
        assert rehearsal is not None
        return hours.is_open(symbol, int(rehearsal().timestamp() * 1e9))

    # With --clock-start the market hours (staleness, entries) follow the rehearsed day too.
    is_open = hours.is_open if rehearsal is None else rehearsed_open
    stream = PriceStream(
        stale_after_s=stale_s, max_batch=cfg.quote_batch_max, audit=rt.audit, is_open=is_open
    )
    monitor = PositionMonitor(stream.instruments, UnroutedExits(rt.audit), grace_s=cfg.backup_exit_grace_s,
                              audit=rt.audit)  # fmt: skip
    ctx = SafetyContext.from_runtime(rt)
    # A split-like jump on a watched instrument holds its backup stop (monitor_splits): say so at once.
    monitor.split_listeners.append(lambda s: ctx.alerts.order_event("split", s.symbol, s.message, s.symbol))
    # ... and apply it to the watched positions once <data_dir>/splits.csv confirms it (daemon_splits).
    from datetime import UTC, datetime

    from joe.runtime.daemon_splits import SplitFollower

    def today() -> Any:
        return (rehearsal() if rehearsal is not None else datetime.now(UTC)).date()

    def split_alert(sym: str, text: str) -> None:
        ctx.alerts.order_event("split", sym, text, sym)

    follower = SplitFollower.in_data_dir(monitor, rt.audit, rt.data_dir, today, split_alert)
    monitor.split_listeners.append(follower.on_suspect)
    closers = []
    from joe.runtime.push import alert_manager
    from joe.safety.alert_pump import AlertPump

    # The safety layer's alerts (margin, breaker, lost stop, fills...) go out as they come.
    pump = AlertPump(ctx, lambda: alert_manager(rt))
    periodic: list[tuple[str, float, Any]] = [("alerts", 5.0, pump), follower.periodic()]
    desk = None
    daemon: Any = None  # bound below; the runner and the desk read whether it is stopping
    on_run = pipeline_runner(broker, rt.audit, stopping=lambda: daemon is not None and daemon.stopping,
                             clock=rehearsal, after_child=after_child)  # fmt: skip
    safety = DaemonSafety(ctx, every_s=heartbeat or cfg.heartbeat_s)
    if broker != "sim" and rt.mode == "live":
        from joe.runtime.daemon_live import DeskHolder, build_desk

        def build() -> Any:
            assert desk is not None
            return build_desk(rt, broker, hours, stream, monitor, ctx, lambda _r: safety.recheck(),
                              on_recovered=desk.reconcile)  # fmt: skip

        from joe.safety.margin_blind import BlindMargin, blind_bound_s

        watch = BlindMargin(ctx, broker, blind_bound_s(cfg.margin_check_s), positions=lambda: len(monitor))
        desk = DeskHolder(build, rt.audit, stopping=lambda: daemon is not None and daemon.stopping,
                          margin_watch=watch)  # fmt: skip
        on_run = desk.hand_over(on_run)
    elif broker != "sim" and rt.mode == "shadow":
        from joe.runtime.daemon_live import open_shadow_account

        check_margin, close = await open_shadow_account(rt, broker, hours, stream, ctx)
        periodic.append(("margin", cfg.margin_check_s, check_margin))
        closers.append(close)
    elif broker != "sim":
        source, close = await open_quote_source(rt, broker, hours)
        await attach_source(rt, source, stream)  # behind brokers.failover when enabled
        closers.append(close)
    elif symbols:
        console.print("--broker sim has no live quotes: --watch is ignored")
        symbols = []
    timings = DaemonTimings(heartbeat_s=heartbeat or cfg.heartbeat_s, settle_s=cfg.settle_s,
                            reconcile_s=cfg.reconcile_min * 60)  # fmt: skip
    daemon = Daemon(
        audit=rt.audit, state=rt.store, stream=stream, monitor=monitor, mode=rt.mode, timings=timings,
        watch=symbols, schedule=schedule_from_config(cfg.schedule) if schedule else None,
        on_run=on_run, safety_gate=safety.entries_allowed,
        start=desk.start if desk else None, stop=desk.stop if desk else None,
        reconcile=desk.reconcile if desk else None, beat_extra=desk.beat if desk else None,
        periodic=[("margin", cfg.margin_check_s, desk.check_margin), *periodic] if desk else periodic,
        schedule_clock=rehearsal,
    )  # fmt: skip
    if clock_start is not None:
        rt.audit.record("daemon.clock", {"start": clock_start.isoformat(), "rate": 1.0})
        console.print(f"schedule clock starts at {clock_start.isoformat()} (rehearsal)")
    daemon.install_signal_handlers()
    web = None
    try:
        if web_listen is not None:
            # Before the start-up reconciliation: the operator can see (and halt) a slow start.
            web = await _start_web(rt, ctx, web_listen, safety.recheck, console)
        console.print(f"daemon running ({rt.mode}, broker {broker}); SIGTERM, Ctrl-C or a hang-up stops it")
        await daemon.run()
    finally:
        if web is not None:
            await web.stop()  # after the daemon's orderly stop: its last state stays visible until then
            rt.audit.record("web.stopped", {"port": web.port, "in": "daemon"})
        if desk is not None:
            await desk.stop()  # no-op after an orderly stop; closes the connection after a failed start
        for close in closers:
            await close()
        await pump.close()
