"""`joe run --once` in live and shadow mode: the same stages as paper, plus the broker side.

    preflight (audit chain, kill file, state) → paper-twin/shadow book: open, load market, settle →
    connect the broker → [live] reconcile (OrderManager start + positions explained) → the broker's
    account (and, live, its positions) → analyse, sized on that account → [live] strategy exits
    (reduce-only) → margin monitor, RiskGate screen on the broker's figures → [live] brackets through
    the OrderManager, the same signals to the paper twin | [shadow] intents built and checked (IBKR
    what-if), filled by the shadow book at live quotes, nothing transmitted → report (+ live section).

Sizes, exposure, drawdown and daily-loss checks use the BROKER ACCOUNT's figures (equity = net
liquidation, available funds), in the account currency, read after the reconciliation; each run
records the broker's equity (`record_equity`, mode live/shadow) so the next run's day-start and peak
equity are the broker's too. A signal on an instrument quoted in another currency than the account
is not sent (no FX rate to size it with): said per signal. Shadow sizes on the live account as well
(its positions are the shadow book's: nothing was transmitted).

The paper twin (live) and the shadow book (shadow) are `PaperPortfolio`s in their own store,
`<data dir>/twin-<mode>.db`, so they never mix with the paper track record the live gate reads.
Which portfolio runs depends only on the resolved mode (`rt.mode`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.analysis.strategies.engine import StrategyEngine
from joe.brokers.base import BrokerUnavailable, WhatIfResult
from joe.core.clock import clock_from
from joe.core.ids import new_run_id
from joe.core.logging import get_logger
from joe.core.models import AccountInfo, Position, Signal
from joe.execution.order_manager import OrderManager
from joe.portfolio.base import SignalOutcome
from joe.portfolio.intents import NotTradable, bracket_for
from joe.portfolio.live import LivePortfolio
from joe.portfolio.rollout import Rollout
from joe.portfolio.shadow import ShadowPortfolio
from joe.portfolio.strategy_exits import held_against, held_calls, strategy_exits
from joe.reporting.context import OPENED_PREFIX
from joe.reporting.live_section import LiveFacts, write_live_section
from joe.runtime.live_broker import BrokerLink, open_broker
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
    without_no_entries,
    write_report,
)
from joe.safety.broker_health import watch_broker_health
from joe.safety.broker_safety import BrokerSafety
from joe.safety.live_book import fetch_live_book
from joe.safety.risk_gate import ProposedOrder
from joe.safety.run_guard import RunGuard, SafetyRefused
from joe.store import Store, open_store

if TYPE_CHECKING:
    from joe.config.schema import ExecutionConfig
    from joe.runtime.bootstrap import Runtime

log = get_logger("joe.runtime.live")


class LiveRunRefused(SafetyRefused):
    """The live/shadow run cannot trade: no broker selected, or the broker refused to connect."""


def twin_store_url(rt: Runtime) -> str:
    return f"sqlite:///{rt.data_dir / f'twin-{rt.mode}.db'}"


async def run_live(
    rt: Runtime, opts: RunOptions, progress: Progress, clock: Callable[[], datetime]
) -> RunState:
    """One live or shadow run; returns the run state (the caller builds the outcome)."""
    if opts.broker not in ("ibkr", "capital"):
        raise LiveRunRefused(
            f"{rt.mode} needs JOE_BROKER=ibkr or capital, not {opts.broker!r}; nothing was sent"
        )
    if opts.as_of is not None:
        # A live/shadow run sends (or checks) orders now, at today's prices: a back-dated analysis
        # would send a decision weeks old (stops and targets from old bars), as the daemon never does
        # with a missed run (hostile review 2026-12-02: `--as-of` three weeks back sent a live short).
        raise RunArgumentError(
            f"--as-of {opts.as_of}: a {rt.mode} run trades at {opts.broker} now, on the latest bars, and "
            "takes no --as-of (an older date would send an old decision at today's prices); nothing was "
            "sent. Drop --as-of; for a past date use `joe backtest` or a paper book (TRADING_MODE=paper)"
        )
    started = clock()
    run_id = new_run_id(started)
    # real_money / simulator: the account kind this run trades, read back by the demo-live record
    # (joe.safety.demo_record, issue 19).
    rt.audit.record(
        "run.started",
        {"mode": rt.mode, "broker": opts.broker, "real_money": rt.decision.real_money,
         "simulator": rt.decision.simulator},
        run_id=run_id,
    )  # fmt: skip
    guard = RunGuard.start(rt)  # audit chain, kill file, trading state: SafetyRefused stops everything
    twin = open_store(twin_store_url(rt), data_dir=rt.data_dir)
    try:
        config = await _twin_config(rt, opts.broker, twin)  # reads the broker's account
    except BaseException as exc:
        twin.close()
        _name_run(exc, run_id)
        raise
    st = RunState(replace(rt, store=twin, config=config), opts, run_id, started, progress, clock)
    st.guard = guard
    st.warnings += guard.warnings
    try:
        open_book(st)
        await load_market(st)
        assert st.as_of_ts is not None
        as_of = st.as_of_ts.to_pydatetime()
        rt.store.start_run(run_id, mode=rt.mode, broker=opts.broker, source=opts.source_label, as_of=as_of)
        await settle_book(st)
        progress.stage("broker", f"connecting to {opts.broker} ({rt.mode})")
        link = await _connect(rt, opts.broker, run_id)
        # What the connection says the far end is (never the port): the demo-live record counts only
        # runs whose venue was not the simulator (joe.safety.demo_record, review r16 defect 4).
        rt.audit.record("run.venue", {"broker": opts.broker, "simulator": link.simulator}, run_id=run_id)
        if opts.market_clock_start is not None and not link.simulator:
            # A shifted clock could open a market that is closed on a real account: the real clock judges.
            why = f"--clock-start / JOE_CLOCK_START ignored: {opts.broker} here is not Joe's simulator"
            rt.audit.record("run.clock_ignored", {"reason": why}, run_id=run_id)
            log.warning("run.clock_ignored", reason=why)
            st.warnings.append(why + "; market hours are judged by the real clock")
            st.opts = replace(st.opts, market_clock_start=None)
        try:  # reconcile, analyse on the broker's account, trade
            facts = await _trade(rt, st, guard, link)
        finally:
            await link.close()
        await write_report(st)
        if st.paths is not None:
            write_live_section(st.paths.dir, facts)
        summary = finish(st)
        rt.store.finish_run(run_id, "ok", summary, str(st.paths.dir) if st.paths else None)
        await guard.finish()
        await _pending_flatten(rt, guard, st)
    except BaseException as exc:
        try:
            rt.store.finish_run(run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        except Exception:
            pass
        _name_run(exc, run_id)
        raise
    finally:
        twin.close()
    return st


async def _pending_flatten(rt: Runtime, guard: RunGuard, st: RunState) -> None:
    """A ``joe kill --flatten`` asked after the run's last enforcement pass (while it wrote its report)
    is still this run's job: it holds the data folder until it returns (joe.safety.broker_flatten)."""
    from joe.safety.broker_flatten import carry_out_pending

    try:
        done = await carry_out_pending(rt, guard.ctx)
    except Exception as exc:  # HALTED already; the request stays for the next live Joe
        why = f"{type(exc).__name__}: {exc}"
        note = f"kill --flatten asked during the run: NOT DONE ({why}); it stays pending"
        rt.audit.record("safety.flatten_failed", {"error": note[:500]}, run_id=st.run_id)
        st.warnings.append(note)
        return
    if done is not None:
        r, head = done["report"], "FLAT" if done["flat"] else "INCOMPLETE"
        st.warnings.append(
            f"kill --flatten asked during the run: carried out at its end: {head}; positions left: "
            f"{r['left_positions'] or 'none'}; working orders left: {r['left_orders'] or 'none'}"
        )


async def _connect(rt: Runtime, broker: str, run_id: str) -> BrokerLink:
    """The run's broker connection; a broker that is down refuses the run (exit 3): nothing is sent, its
    positions keep their broker-side stops, and the next run that reaches it reconciles before any order
    (issue 19: new entries only to a healthy broker, never to the other one)."""
    try:
        return await open_broker(rt, broker)
    except (BrokerUnavailable, OSError, TimeoutError) as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        rt.audit.record("live.broker_unavailable", {"broker": broker, "reason": why[:300]}, run_id=run_id)
        raise LiveRunRefused(
            f"{broker} is unavailable ({why[:200]}): no order was sent; its positions keep their broker-side "
            "stops; the next run reconciles with it before any new order"
        ) from exc


def _name_run(exc: BaseException, run_id: str) -> None:
    """Let a failure name the run it ended (`joe.runtime.run_once` audits `run.failed` with it)."""
    with contextlib.suppress(AttributeError):
        exc.joe_run_id = run_id  # type: ignore[attr-defined]


async def _twin_config(rt: Runtime, broker: str, twin: Store) -> ExecutionConfig:
    """The config the paper twin / shadow book runs with: when the book is created (its first run), the
    paper section starts at the broker account's equity and currency, read over a short connection
    (closed before the market data opens its own). The book takes the same signals, sized on that
    account, so it must be able to hold them; afterwards its ledger carries on from its own fills."""
    if twin.get_paper_account() is not None:
        return rt.config
    link = await open_broker(rt, broker)
    try:
        account = await link.client.account()
    finally:
        await link.close()
    paper = rt.config.paper.model_copy(update={"starting_cash": account.equity, "currency": account.currency})
    return rt.config.model_copy(update={"paper": paper})


async def _trade(rt: Runtime, st: RunState, guard: RunGuard, link: BrokerLink) -> LiveFacts:
    assert st.pf is not None and st.as_of_ts is not None
    t0 = time.perf_counter()
    facts = LiveFacts(rt.mode, st.opts.broker)
    om: OrderManager | None = None
    safety: BrokerSafety | None = None
    unwatch: Callable[[], None] | None = None
    try:
        live: LivePortfolio | None = None
        if rt.mode == "live":
            om, live, safety = _live_portfolio(rt, guard, link.client, st.opts.broker)
            safety.enforce(om)
            st.progress.stage("reconcile", f"{st.opts.broker}: orders, executions and positions")
            rec = await live.start()
            facts.reconciled, facts.findings = rec.explained, list(rec.findings) + list(rec.notes)
            # A flatten left pending (for a Joe since ended, or a KILL file at flatten) is carried out
            # first; then the run polls for `joe kill` / data/KILL from other processes while it lasts.
            await safety.start_polling()
            account, held = await live.account(), await live.positions()
        else:  # shadow: the live account's figures, the shadow book's positions (nothing was sent)
            # The broker's wire trouble feeds its breaker as in live: shadow halts where live would.
            _, unwatch = watch_broker_health(guard.ctx, st.opts.broker, rt.config.safety.breaker)
            account, held = await link.client.account(), await st.pf.positions()
        facts.equity, facts.account = f"{account.equity} {account.currency}", account
        ts = st.as_of_ts.to_pydatetime()
        # The next run's day start / peak, of THIS broker account (a demo and a real account, or two
        # brokers, share a data folder; their baselines never mix).
        from joe.store.records import equity_account

        marks_of = equity_account(st.opts.broker, account.account_id)
        rt.store.record_equity(ts, rt.mode, account.equity, account.cash, marks_of)
        await analyse_market(st, account=account, positions=held)  # sized on the broker's equity
        assert st.result is not None
        approved = _in_account_currency(st, account, st.result.approved[: rt.config.pipeline.max_signals])
        facts.universe = list(st.snap.universe) if st.snap else []
        if live is not None:
            exits = strategy_exits(held, _held_calls(st, held), facts.universe)
            facts.exits = await live.strategy_exit(exits)
        # The paper twin / shadow book follows the same strategy exits on its own positions.
        facts.book_exits = await _book_exits(st, link if live is None else None, facts.universe)
        approved = _no_reversal(st, held, approved)
        _check_margin(rt, guard, st.opts.broker, account)
        await _margin_previews(guard, link.client, approved)
        assert st.snap is not None
        # An entry fills NOW: market hours at this minute and a fresh live quote (joe.safety.live_book),
        # and the protections' locks at this minute (a stop-out at the broker this morning counts).
        start = st.opts.market_clock_start
        run_clock = clock_from(start) if start else st.clock
        book = guard.daily_book(
            st.snap, st.as_of_idx, account, held, approved, equity_account=marks_of, minute=run_clock(),
            shadow_book=st.rt.store if live is None else None,  # shadow: its book's own stop-outs lock too
        )  # fmt: skip
        # A rehearsal clock at Joe's simulator: the simulator may date its quotes on a shifted clock too.
        book = await fetch_live_book(
            book, link.market, [s.symbol for s in approved], run_clock, venue_clock=start is not None
        )
        allowed, denied = guard.screen(approved, book)
        st.executions.update(denied)
        allowed = without_no_entries(st, allowed)  # the daemon's stale instruments (--no-entry)
        allowed, stopped = guard.last_look(allowed)  # SIGTERM since the screen: no entry
        st.executions.update(stopped)
        if live is None:
            await _shadow(rt, st, link, allowed, facts, guard)
        else:
            await _live(rt, st, live, allowed, facts)
        for o in st.outcomes:
            if o.fill is not None:
                st.executions[o.signal_id] = f"{OPENED_PREFIX}{o.fill.quantity} @ {o.fill.price}"
            else:
                st.executions[o.signal_id] = f"{o.action}: {o.reason}"
        if safety is not None:
            await safety.final_pass()  # a kill asked since the last poll is done by this run
    finally:
        if unwatch is not None:
            unwatch()
        if safety is not None:
            await safety.settle()  # a lost-protection reaction in flight finishes first
        if om is not None:
            await om.stop()
        if safety is not None:
            await safety.close()
    st.timings["broker"] = time.perf_counter() - t0
    return facts


async def _shadow(
    rt: Runtime, st: RunState, link: BrokerLink, allowed: list[Signal], facts: LiveFacts, guard: RunGuard
) -> None:
    assert st.pf is not None and st.as_of_ts is not None
    shadow = ShadowPortfolio(link.client, link.market, st.pf, rt.audit, trading_state=guard.ctx.states)
    st.progress.stage("shadow", f"{len(allowed)} signals: intents checked, nothing transmitted")
    st.outcomes = await shadow.submit(allowed, st.as_of_ts.to_pydatetime())
    facts.shadow_intents = [
        {"symbol": i.symbol, "side": i.side, "quantity": str(i.quantity), "stop": str(i.stop),
         "target": str(i.target), "live_price": str(i.live_price), "what_if": i.what_if}
        for i in shadow.intents
    ]  # fmt: skip


async def _live(
    rt: Runtime, st: RunState, live: LivePortfolio, allowed: list[Signal], facts: LiveFacts
) -> None:
    assert st.pf is not None and st.as_of_ts is not None
    ts = st.as_of_ts.to_pydatetime()
    broker = st.opts.broker
    rollout = Rollout(rt.config, rt.store, real_money=rt.decision.real_money, broker=broker, audit=rt.audit)
    facts.rollout = rollout.lines()
    live.size_cap, live.on_entry = rollout.cap, rollout.record_entry
    st.progress.stage("trading", f"{len(allowed)} signals → brackets at {broker}")
    outcomes = await live.submit(allowed, ts)
    # The paper twin: the same signals (one against a position the twin holds, not live, is not a
    # reversal it may take either: said in its outcome).
    twin_held = await st.pf.positions()
    twin_outcomes = [
        SignalOutcome(s.signal_id, s.symbol, "skipped", "the paper twin holds the other side")
        if held_against(twin_held, s) is not None
        else (await st.pf.submit([s], ts))[0]
        for s in allowed
    ]
    st.outcomes = outcomes
    facts.outcomes = [
        {"symbol": o.symbol, "action": o.action, "reason": o.reason, "twin": t.action}
        for o, t in zip(outcomes, twin_outcomes, strict=True)
    ]
    facts.positions = await live.positions()
    facts.orders = await live.orders()
    facts.fills = live.run_fills()
    facts.twin_fills = list(st.pf.run_fills)
    facts.rollout_state = rollout.state()


def _in_account_currency(st: RunState, account: AccountInfo, signals: Sequence[Signal]) -> list[Signal]:
    """The signals on instruments quoted in the account currency; the others are not sent (sized in the
    account currency against prices in another, with no FX rate to convert): said per signal."""
    assert st.snap is not None
    keep: list[Signal] = []
    for s in signals:
        inst = st.snap.instruments.get(s.symbol)
        cur = inst.currency if inst is not None else account.currency
        if cur and account.currency and cur.upper() != account.currency.upper():
            st.executions[s.signal_id] = (
                f"skipped: {s.symbol} is quoted in {cur} and the {st.opts.broker} account in "
                f"{account.currency}; Joe has no FX rate to size it in the account currency, nothing sent"
            )
            continue
        keep.append(s)
    return keep


def _held_calls(st: RunState, held: Sequence[Position]) -> list[Signal]:
    """The strategies' call this run on each held symbol (`StrategyEngine.calls`, the run's regime and
    as-of bar): what a reversal is judged on, whatever the risk stage made of it as an entry."""
    assert st.snap is not None and st.result is not None
    engine = StrategyEngine.from_config(st.rt.config.pipeline)
    return held_calls(engine, st.snap.panel, held, st.result.regime, st.as_of_idx, st.features)


async def _book_exits(st: RunState, link: BrokerLink | None, universe: list[str]) -> list[dict[str, str]]:
    """The strategy exits of the paper twin (live) or the shadow book (shadow) on its own positions, at
    the as-of close it is marked at (live's twin, as its entries) or, in shadow, at the live quote's mid
    (as its entries; the mark when there is none)."""
    assert st.pf is not None and st.as_of_ts is not None
    book = await st.pf.positions()
    exits = strategy_exits(book, _held_calls(st, book), universe)
    if not exits:
        return []
    prices = {p.symbol: p.market_price for p in book if p.market_price is not None}
    if link is not None:
        with contextlib.suppress(Exception):  # no quote: the mark
            quotes = await link.market.quotes(sorted({x.symbol for x in exits}))
            for sym, q in quotes.items():
                if q.bid > 0 and q.ask > 0:
                    prices[sym] = Decimal(str(q.mid))
    return st.pf.strategy_exit(exits, prices, st.as_of_ts.to_pydatetime())


def _no_reversal(st: RunState, held: Sequence[Position], signals: Sequence[Signal]) -> list[Signal]:
    """Drop entries against a held position (its strategy exit goes first; never reverse in one step)."""
    keep: list[Signal] = []
    for s in signals:
        p = held_against(held, s)
        if p is None:
            keep.append(s)
            continue
        st.executions[s.signal_id] = (
            f"skipped: {s.symbol} is held {p.direction.value} {p.quantity}; the position is exited "
            f"reduce-only first, a {s.direction.value} entry would reverse it"
        )
    return keep


async def _margin_previews(guard: RunGuard, client: object, signals: list[Signal]) -> None:
    """The broker's margin preview (IBKR whatIfOrder) of each entry, fetched before the RiskGate's
    `MarginWhatIf` rule judges it (the gate's rules are synchronous). A preview that failed is
    raised again by the rule, which denies the entry (fail closed); no preview API: no rule."""
    what_if = getattr(client, "what_if", None)
    if what_if is None or guard.gate is None:
        return
    results: dict[str, WhatIfResult | Exception] = {}
    for s in signals:
        try:
            rules = await client.instrument_rules(s.symbol)  # type: ignore[attr-defined]
            results[s.signal_id] = await what_if(bracket_for(s, rules)[0])
        except NotTradable:
            continue  # the portfolio skips it with its own reason
        except Exception as exc:
            results[s.signal_id] = exc

    def preview(order: ProposedOrder) -> WhatIfResult | None:
        got = results.get(order.signal_id)
        if isinstance(got, Exception):
            raise got
        return got

    guard.gate.whatif = preview


def _check_margin(rt: Runtime, guard: RunGuard, broker: str, account: object) -> None:
    """The margin monitor, polled before entries: below its cushions it moves the trading state,
    which the RiskGate screen then enforces (REDUCING/HALTED refuse entries)."""
    from joe.safety.margin_monitor import MarginMonitor, MarginReading

    try:
        reading = MarginReading.from_account(broker, account)  # type: ignore[arg-type]
    except Exception as exc:  # no reading is not an OK reading: say so
        guard.warnings.append(f"margin: no reading from {broker} ({type(exc).__name__})")
        return
    MarginMonitor(rt.config.safety.margin, guard.ctx).check(reading)


def _live_portfolio(
    rt: Runtime, guard: RunGuard, client: object, broker: str
) -> tuple[OrderManager, LivePortfolio, BrokerSafety]:
    # Every guard around the OrderManager in one place (joe.safety.broker_safety): the breaker counts
    # every order outcome and the broker's wire trouble (5xx, 429, lost connections); fills, rejects
    # and UNKNOWN outcomes alert; a position whose stop is missing gets the lost-protection reaction;
    # a HALT cancels working entries.
    safety = BrokerSafety(guard.ctx, broker, rt.config.safety)
    om = safety.order_manager(client, rt.store, mode="live")
    # An unexplained reconciliation also halts new entries beyond this run (as in the daemon).
    return om, LivePortfolio(om, rt.store, rt.audit, trading_state=guard.ctx.states), safety
