"""The safety layer's hooks into one run (``joe run --once``; the daemon will call the same ones).

Three calls keep the run's own code small:

* `RunGuard.start` — before anything: kill file, trading state, audit chain (`preflight`);
  raises `SafetyRefused` when the run must not trade at all;
* `RunGuard.after_marks` — once the paper book is marked: a pending ``kill --flatten`` closes
  every paper position at those marks;
* `RunGuard.screen` — every intent, in every mode: the trading state and the `RiskGate`; returns
  the intents allowed and, for each denied one, the text the report's signal table shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from joe.core.clock import utcnow
from joe.core.logging import get_logger
from joe.core.models import AccountInfo, Position, Signal
from joe.safety.control import SafetyContext
from joe.safety.paper_venue import run_pending_paper_flatten
from joe.safety.preflight import Preflight, SafetyRefused, preflight
from joe.safety.trading_state import StateRecord

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.market import MarketSnapshot
    from joe.runtime.stages import RunState
    from joe.safety.risk_gate import GateBook, RiskGate
    from joe.store import Store

log = get_logger("joe.safety.run")

__all__ = ["STOP_FILE_ENV", "RunGuard", "RunTerminated", "SafetyRefused", "entries_stopped", "stop_entries"]

# Set by `stop_entries` (a signal handler: SIGTERM to `joe run --once`, which the daemon sends its
# scheduled run when it stops, or the kernel when the daemon died): from then on the run sends no new
# entry; its exits, report and records still finish.
_STOPPED: list[str] = []
# A file whose existence stops entries the same way: the daemon names one for its scheduled run and
# creates it when it stops (a signal could arrive before the child's handler is installed).
STOP_FILE_ENV = "JOE_STOP_ENTRIES_FILE"


class RunTerminated(Exception):
    """A second SIGTERM: the run stops where it is (recorded ``run.failed``; broker-side stops stay)."""


def stop_entries(reason: str) -> None:
    """No new entry from now on in this process (safe from a signal handler: sets a flag only)."""
    if not _STOPPED:
        _STOPPED.append(reason)


def entries_stopped() -> str | None:
    """Why new entries were stopped in this process (SIGTERM, or the daemon's stop file), or None."""
    if not _STOPPED and (path := os.environ.get(STOP_FILE_ENV)) and os.path.exists(path):
        stop_entries("the daemon that started this run is stopping (no new entries; exits finish)")
    return _STOPPED[0] if _STOPPED else None


@dataclass
class RunGuard:
    rt: Runtime
    ctx: SafetyContext
    pre: Preflight
    warnings: list[str] = field(default_factory=list)
    gate: RiskGate | None = None
    # Why new entries were refused in this run (the kill file or the trading state), None when they
    # were not: `joe run --once` then still does its exits and its report, and exits 3 saying so.
    entries_refused: str | None = None

    @classmethod
    def start(cls, rt: Runtime, clock: Callable[[], datetime] = utcnow) -> RunGuard:
        """`clock`: the time the safety layer reads (trading-state changes, the RiskGate's order-rate
        limits); a backtest passes its simulated clock, so the limits count orders per simulated
        minute, not per second of the replay."""
        from joe.safety.risk_gate import RiskGate

        ctx = SafetyContext.from_runtime(rt)
        ctx.clock = clock
        pre = preflight(rt, ctx)
        for w in pre.warnings:
            log.warning("safety.preflight", warning=w)
        guard = cls(rt, ctx, pre, list(pre.warnings), RiskGate(rt.config.risk, rt.audit, clock=clock))
        if not pre.entries_allowed:
            guard.entries_refused = _refusal(pre.state, pre.kill_file is not None)
        return guard

    def daily_book(
        self,
        snap: MarketSnapshot,
        as_of_idx: int,
        account: AccountInfo,
        positions: list[Position],
        signals: Sequence[Signal],
        equity_account: str = "",
        minute: datetime | None = None,
        shadow_book: Store | None = None,
    ) -> GateBook:
        """The gate's view of a run on daily bars, at the close of `as_of_idx`; `equity_account`: whose
        daily-loss/drawdown marks (`joe.store.records.equity_account`; "" for the paper book); `minute`:
        a live/shadow run's clock, where the protections' locks are judged, and `shadow_book` a shadow run's
        book, whose closed trades they judge (`paper_book.daily_book`)."""
        from joe.safety.paper_book import daily_book

        return daily_book(
            store=self.rt.store,
            mode=self.rt.mode,
            panel=snap.panel,
            instruments=snap.instruments,
            as_of_idx=as_of_idx,
            account=account,
            positions=positions,
            symbols=[s.symbol for s in signals],
            lookback=self.rt.config.risk.correlation_lookback,
            protections=self.rt.config.safety.protections,
            opening_equity=self.rt.config.paper.starting_cash if self.rt.mode == "paper" else None,
            equity_account=equity_account,
            minute=minute,
            shadow_book=shadow_book,
        )

    async def after_marks(self, st: RunState) -> int:
        """Run a pending paper flatten at the book's marks; returns how many positions it closed."""
        assert st.pf is not None and st.as_of_ts is not None
        report = await run_pending_paper_flatten(self.ctx, st.pf, {}, st.as_of_ts.to_pydatetime())
        if report is None:
            return 0
        note = f"kill --flatten: closed {len(report.closed)} paper position(s)" + (
            "" if report.flat else f"; LEFT {report.left_positions}"
        )
        self.warnings.append(note)
        st.warnings.append(note)
        return len(report.closed)

    async def screen_run(
        self, st: RunState, signals: Sequence[Signal]
    ) -> tuple[list[Signal], dict[str, str]]:
        """`screen` with the book of a run on daily bars (see `daily_book`). With no signal there is
        nothing for the book to judge: the trading-state checks still run (they note a refusal), the
        book is not built (on most backtest days no signal reaches the gate)."""
        assert st.pf is not None and st.snap is not None
        if not signals:
            return self.screen(signals, None)
        book = self.daily_book(st.snap, st.as_of_idx, await st.pf.account(), await st.pf.positions(), signals)
        return self.screen(signals, book)

    def screen(
        self, signals: Sequence[Signal], book: GateBook | None = None
    ) -> tuple[list[Signal], dict[str, str]]:
        """(allowed signals, {signal_id: why denied}) — every denial audited."""
        from joe.safety.control import entry_allowed

        if (stopped := entries_stopped()) is not None:
            return self.refuse_stopped(signals, stopped)
        allowed_now, state = entry_allowed(self.ctx)  # the kill file may have appeared since start
        if not allowed_now:
            self.entries_refused = _refusal(state, state.by == "kill-file")
            why = f"denied: trading_state: trading is {state.state.value} (by {state.by}: {state.reason})"
            for s in signals:
                self.rt.audit.record(
                    "risk.denied",
                    {
                        "rule": "trading_state",
                        "state": state.state.value,
                        "by": state.by,
                        "reason": state.reason,
                    },
                    signal_id=s.signal_id,
                )
            return [], {s.signal_id: why for s in signals}
        if self.gate is None or book is None:
            return list(signals), {}
        return self.gate.screen(signals, book)

    def refuse_stopped(self, signals: Sequence[Signal], why: str) -> tuple[list[Signal], dict[str, str]]:
        """Every signal denied because the run was told to stop entries (audited ``risk.denied``)."""
        for s in signals:
            self.rt.audit.record(
                "risk.denied", {"rule": "run_stopping", "reason": why}, signal_id=s.signal_id
            )
        return [], {s.signal_id: f"denied: run_stopping: {why}" for s in signals}

    def last_look(self, signals: Sequence[Signal]) -> tuple[list[Signal], dict[str, str]]:
        """Just before sending: `signals` unless entries were stopped meanwhile."""
        if (stopped := entries_stopped()) is not None and signals:
            return self.refuse_stopped(signals, stopped)
        return list(signals), {}

    async def finish(self) -> int:
        """Deliver the queued safety alerts through the configured channels."""
        from joe.runtime.push import alert_manager

        if not self.ctx.alerts.pending:
            return 0
        manager = alert_manager(self.rt)
        try:
            return await self.ctx.alerts.flush(manager if manager.enabled else None)
        finally:
            await manager.aclose()


def _refusal(state: StateRecord, kill_file: bool) -> str:
    return (
        f"new entries refused: trading is {state.state.value.upper()} (by {state.by}: {state.reason})"
        + ("; the kill file is present — remove it, then" if kill_file else ";")
        + " `joe resume --reason ...` to trade again"
    )
