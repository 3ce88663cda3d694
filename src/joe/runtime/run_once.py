"""`joe run --once`: Regime → Scan → Score → Strategy → Risk → Signal → paper trades → report.

The run is one pass over the data as of one date, through the stage functions of
`joe.runtime.stages`. It is idempotent: signal ids and client order ids are deterministic, and the
book only moves forward, so running twice on the same date changes nothing the second time.

A failure after the run row exists marks it `failed` with what was already done (trades booked
before the failure stay booked: they are in the store and the audit log), audits `run.failed` with
the run id, and raises `RunFailed` whose message says both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from joe.brokers.ibkr.ports import PortModeMismatch
from joe.core.clock import utcnow
from joe.core.ids import new_run_id
from joe.core.logging import get_logger
from joe.data.errors import DataError
from joe.reporting.generator import ReportPaths
from joe.runtime.book import BookRefused
from joe.runtime.bootstrap import Runtime
from joe.runtime.stages import (
    Progress,
    RunArgumentError,
    RunOptions,
    RunState,
    analyse_market,
    finish,
    load_market,
    open_book,
    settle_book,
    trade,
    write_report,
)
from joe.safety.run_guard import RunGuard, SafetyRefused

log = get_logger("joe.runtime.run")


class _Silent:
    def stage(self, name: str, detail: str = "") -> None:
        log.info("run.stage", stage=name, detail=detail)


class LiveModeUnavailable(RuntimeError):
    """The resolved mode needs a live/shadow portfolio, which this command does not run."""


class EndpointRefused(RuntimeError):
    """The broker endpoint does not fit the resolved mode (e.g. a real-money IBKR port in paper mode,
    a Capital.com host off the allow-list): refused for safety (exit 3), nothing was sent."""


class RunFailed(RuntimeError):
    """The run stopped on an error; `run_id` names it and `done` says what it had already booked."""

    def __init__(self, run_id: str, cause: BaseException, done: str) -> None:
        self.run_id = run_id
        self.done = done
        super().__init__(f"{type(cause).__name__}: {cause} (run {run_id}; {done})")


@dataclass
class RunOutcome:
    """What the run did and where the report is."""

    run_id: str
    mode: str
    report: ReportPaths
    as_of: date
    regime: str
    signals: int
    opened: int
    closed: int
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    alerts_delivered: int = 0
    fills: int = 0
    push_failed: bool = False
    # Set when the kill file or the trading state refused new entries (the CLI exits 3 with it).
    entries_refused: str | None = None


def _fail(st: RunState, exc: BaseException) -> RunFailed:
    done = st.done_so_far()
    opened, closed = st.booked()
    payload = {
        "error": f"{type(exc).__name__}: {exc}",
        "done": done,
        "opened": opened,
        "closed": closed,
    }
    if st.run_started:
        try:
            st.rt.store.finish_run(st.run_id, "failed", payload)
        except Exception as store_exc:  # the audit record below still says what happened
            log.error("run.finish_failed", error=type(store_exc).__name__)
    st.rt.audit.record("run.failed", payload, run_id=st.run_id)
    return RunFailed(st.run_id, exc, done)


async def run_once(
    rt: Runtime, opts: RunOptions, progress: Progress | None = None, clock: Callable[[], datetime] = utcnow
) -> RunOutcome:
    """Run the whole pipeline once in the process's mode (paper) and write the report.

    Raises `LiveModeUnavailable` (mode is not paper), `BookRefused` (the as-of or source would break
    the book's continuity), `RunArgumentError` / `DataError` (options outside the data, or a source
    that cannot be read as given), `RunFailed` (anything
    else, with the run id and what was done). Nothing is traded in the first three cases.
    """
    if rt.mode not in ("paper", "live", "shadow"):  # defensive: the mode enum has three values
        rt.audit.record("run.refused", {"mode": rt.mode, "reason": "unknown mode"})
        raise LiveModeUnavailable(f"TRADING_MODE resolved to {rt.mode!r}; nothing was sent")
    if rt.mode != "paper":
        return await _run_live(rt, opts, progress or _Silent(), clock)
    started = clock()
    st = RunState(rt, opts, new_run_id(started), started, progress or _Silent(), clock)
    rt.audit.record(
        "run.started", {"mode": rt.mode, "broker": opts.broker, "source": opts.source_label}, run_id=st.run_id
    )
    # Kill file, trading state, audit chain (SafetyRefused stops the run); the RiskGate for `trade`.
    st.guard = RunGuard.start(rt)
    st.warnings += st.guard.warnings
    if rt.decision.fell_back:
        from joe.runtime.push import notify_mode_fallback

        await notify_mode_fallback(rt)
    try:
        open_book(st)
        await load_market(st)
        await settle_book(st)
        st.closed += await st.guard.after_marks(st)  # a pending `joe kill --flatten`
        await analyse_market(st)
        await trade(st)
        await write_report(st)
        finish(st)
        await st.guard.finish()
    except (BookRefused, RunArgumentError, DataError) as exc:  # nothing done: the options don't fit
        rt.audit.record("run.refused", {"reason": str(exc)}, run_id=st.run_id)
        if st.run_started:
            rt.store.finish_run(st.run_id, "refused", {"reason": str(exc)})
        raise
    except PortModeMismatch as exc:  # refused before any order: a safety refusal, not a failure
        rt.audit.record("run.refused", {"reason": str(exc)}, run_id=st.run_id)
        if st.run_started:
            rt.store.finish_run(st.run_id, "refused", {"reason": str(exc)})
        raise EndpointRefused(str(exc)) from exc
    except Exception as exc:
        raise _fail(st, exc) from exc
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:  # aborted: recorded, then passed on
        _fail(st, exc)
        raise
    assert st.paths is not None and st.result is not None and st.as_of_ts is not None
    return RunOutcome(
        st.run_id,
        rt.mode,
        st.paths,
        st.as_of_ts.date(),
        st.result.regime.label.value,
        len(st.result.signals),
        st.opened,
        st.closed,
        st.timings,
        st.warnings,
        st.delivered,
        len(st.pf.run_fills) if st.pf else 0,
        not st.pushed_ok,
        st.guard.entries_refused,
    )


async def _run_live(
    rt: Runtime, opts: RunOptions, progress: Progress, clock: Callable[[], datetime]
) -> RunOutcome:
    """Live or shadow (`joe.runtime.live_run`); exit-code mapping as for paper."""
    from joe.runtime.live_run import run_live

    try:
        st = await run_live(rt, opts, progress, clock)
    except (BookRefused, RunArgumentError, DataError, SafetyRefused):
        raise
    except PortModeMismatch as exc:
        rt.audit.record("run.refused", {"reason": str(exc)})
        raise EndpointRefused(str(exc)) from exc
    except Exception as exc:
        # The run's id once it has one (`run_live` names it on the exception), so `run.failed` pairs
        # with its `run.started` and the message names a run the user can look up.
        run_id = getattr(exc, "joe_run_id", None)
        payload = {"error": f"{type(exc).__name__}: {exc}", "mode": rt.mode}
        rt.audit.record("run.failed", payload, run_id=run_id)
        done = "`joe audit tail` shows what reached the broker"
        raise RunFailed(run_id or "-", exc, done) from exc
    assert st.paths is not None and st.result is not None and st.as_of_ts is not None
    fills = sum(1 for o in st.outcomes if o.fill is not None)
    return RunOutcome(
        st.run_id,
        rt.mode,
        st.paths,
        st.as_of_ts.date(),
        st.result.regime.label.value,
        len(st.result.signals),
        st.opened,
        st.closed,
        st.timings,
        st.warnings,
        st.delivered,
        fills,
        not st.pushed_ok,
        st.guard.entries_refused if st.guard is not None else None,
    )


def close_interrupted_runs(rt: Runtime) -> list[str]:
    """Mark the runs a SIGKILL or power loss stopped half-way as "interrupted" (audited
    ``run.interrupted`` each) and return their ids. Call only as the data folder's sole lock holder
    (`HeldLocks.sole_holder`): a run left "running" then belongs to a dead process. Their orders need
    nothing here: the order manager rebuilds and reconciles them from the store on start, and a paper
    book resolves its own half-written orders when a run opens it (`PaperPortfolio.resolve_interrupted`)."""
    rows = rt.store.interrupt_unfinished_runs()
    for row in rows:
        rt.audit.record("run.interrupted", {"started_at": row.started_at.isoformat(), "mode": row.mode,
                                            "broker": row.broker}, run_id=row.run_id)  # fmt: skip
    return [r.run_id for r in rows]


def run_once_sync(rt: Runtime, opts: RunOptions, progress: Progress | None = None) -> RunOutcome:
    """Blocking wrapper for the CLI."""
    return asyncio.run(run_once(rt, opts, progress))


__all__ = [
    "BookRefused",
    "EndpointRefused",
    "LiveModeUnavailable",
    "RunArgumentError",
    "RunFailed",
    "RunOptions",
    "RunOutcome",
    "run_once",
    "run_once_sync",
]
