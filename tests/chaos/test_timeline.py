"""The `no_reversal` rule in the broker's timeline (`chaos.timeline`) and `correction_short_known`,
checked on hand-built execution sequences and on the IBKR simulator's book driven directly (no
scenario, no socket): an exit that sells more than Joe held when it filled is a reversal; an exit
that filled against a full position, cut afterwards by TWS's correction of the entry (chaos seed
477), is not, but the short it leaves must be known to Joe."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.invariants import correction_short_known, no_reversal
from chaos.timeline import Exec, as_stored, walk
from chaos.worlds import IB_CLIENT_ID, IB_OWNER_ID, IbkrWorld
from joe.core.models import Fill, Side
from joe.execution.events import AlertKind, ExecutionAlert
from joe.safety.trading_state import TradingState
from joe.simulators.ibkr.book import BookOrder, Execution
from joe.simulators.ibkr.requests import PlacedOrder, ReqContract

D = Decimal
T0 = datetime(2026, 12, 2, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- the IBKR book, by hand
class Tws:
    """The simulator's book of an (unstarted) `IbkrWorld`, driven directly: orders placed and executed
    the way the server's matching does, corrections the way its `correct_exec` fault does."""

    def __init__(self) -> None:
        self.world = IbkrWorld(477, 157, ("AAPL",))
        self.book = self.world.sim.book
        self.n = 0

    def order(self, action: str, qty: int, client_id: int = IB_CLIENT_ID, ref: str = "") -> BookOrder:
        self.n += 1
        contract = ReqContract(0, "AAPL", "STK", "SMART", "", "USD")
        p = PlacedOrder(self.n, contract, action, D(qty), "MKT", None, None, "DAY", "", "", ref or
                        f"joe-{self.n}", True, 0, 0, None, None, False)  # fmt: skip
        self.book.place(client_id, p)
        return self.book.orders[(client_id, self.n)]

    def execute(self, bo: BookOrder, qty: int) -> Execution:
        self.book.execute(bo, D(qty), D(100))
        return self.book.executions[-1]

    def correct(self, bo: BookOrder, ex: Execution, qty: int) -> Execution:
        self.book.correct(bo, ex, D(qty), ex.wire.price)
        return self.book.executions[-1]

    def stored(self) -> list[Fill]:
        """Joe's store, equal to the broker: one row per execution identity, its last revision."""
        last = {}
        for ex in self.world.fills():
            if ex.joes:
                last[ex.fill_id] = Fill(ex.fill_id, ex.ref, ex.symbol, Side.BUY if ex.signed_qty > 0
                                        else Side.SELL, abs(ex.signed_qty), D(100), T0)  # fmt: skip
        return list(last.values())


@dataclass
class _Out:  # what the two invariants read of an `Outcome`
    min_joe_position: Decimal = Decimal(0)
    alerts: list[Any] = field(default_factory=list)
    queued_alerts: list[Any] = field(default_factory=list)


@dataclass
class _Facts:  # what they read of `Facts`
    fills: list[Fill]
    state: TradingState = TradingState.ACTIVE


def _judge(tws: Tws, fills: list[Fill] | None = None, **facts: Any) -> tuple[list[str], list[str]]:
    out = _Out(alerts=facts.pop("alerts", []))
    f = _Facts(tws.stored() if fills is None else fills, **facts)
    return no_reversal(out, tws.world, f), correction_short_known(out, tws.world, f)  # type: ignore[arg-type]


def test_an_exit_that_sells_more_than_held_when_it_fills_is_a_reversal() -> None:
    tws = Tws()
    entry = tws.order("BUY", 3)
    tws.execute(entry, 3)
    tws.execute(tws.order("SELL", 4, ref="joe-target"), 4)
    assert tws.world.positions() == {"AAPL": D(-1)}
    reversal, _short = _judge(tws)
    assert len(reversal) == 2  # at the broker and in Joe's store
    assert reversal[0].startswith("at the broker: AAPL: Joe's sell") and "joe-target" in reversal[0]
    assert reversal[1].startswith("in Joe's store:")


def test_an_exit_that_oversells_before_a_correction_grows_the_entry_is_still_a_reversal() -> None:
    """The end state (flat) would hide it: the exit sold 3 against 1."""
    tws = Tws()
    entry = tws.order("BUY", 3)
    first = tws.execute(entry, 1)
    tws.execute(tws.order("SELL", 3, ref="joe-target"), 3)
    tws.correct(entry, first, 3)
    assert tws.world.positions() == {}
    reversal, short = _judge(tws)
    assert reversal and "joe-target" in reversal[0] and short == []


def test_an_exit_against_a_full_position_cut_later_by_a_correction_is_not_a_reversal() -> None:
    """Seed 477 as the broker had it: the entry's refill of 2 and the target's 3 fill in one matching
    pass (held 1 + 2 = 3, sold 3: flat), then TWS corrects the refill 2 -> 1: the account is short 1."""
    tws = Tws()
    entry = tws.order("BUY", 3)
    first = tws.execute(entry, 3)
    tws.correct(entry, first, 1)  # the first correct_exec: the entry works again for 2
    refill = tws.execute(entry, 2)
    tws.execute(tws.order("SELL", 3, ref="joe-target"), 3)
    tws.correct(entry, refill, 1)  # the second, after the target sold
    assert tws.world.positions() == {"AAPL": D(-1)}
    reversal, short = _judge(tws)  # Joe's store follows the broker: it knows the short
    assert reversal == [] and short == []
    # Joe's store without the second correction (it never learned it), trading ACTIVE: left silently.
    refill_id = refill.wire.exec_id.rpartition(".")[0]
    unaware = [Fill(f.fill_id, f.client_order_id, f.symbol, f.side, D(2), f.price, f.ts)
               if f.fill_id == refill_id else f for f in tws.stored()]  # fmt: skip
    reversal, short = _judge(tws, unaware)
    assert reversal == []
    assert len(short) == 1 and "Joe short -1 at the broker (AAPL: correction of" in short[0]
    assert short[0].endswith("trading is active")
    # HALTED without an alert naming the symbol is not knowing it either; with one it is.
    assert _judge(tws, unaware, state=TradingState.HALTED)[1][0].endswith("no alert names AAPL")
    said = ExecutionAlert(AlertKind.BROKER_CORRECTION, "AAPL: broker position -1, Joe's 0", T0)
    assert _judge(tws, unaware, state=TradingState.HALTED, alerts=[said]) == ([], [])
    assert _judge(tws, unaware, state=TradingState.REDUCING, alerts=[said]) == ([], [])


def test_the_owners_trades_are_not_joes() -> None:
    """The owner bought 2 and sold them; Joe's exit sold its own 3: Joe never went short."""
    tws = Tws()
    tws.execute(tws.order("BUY", 2, IB_OWNER_ID), 2)
    tws.execute(tws.order("BUY", 3), 3)
    tws.execute(tws.order("SELL", 2, IB_OWNER_ID), 2)
    tws.execute(tws.order("SELL", 3), 3)
    assert _judge(tws) == ([], [])
    tws.execute(tws.order("BUY", 5, IB_OWNER_ID), 5)  # the owner's long does not cover Joe's over-sell
    tws.execute(tws.order("SELL", 1), 1)
    assert len(_judge(tws)[0]) == 2


def test_a_stored_fill_the_broker_never_executed_counts_in_the_store() -> None:
    """A standing estimate of a sell Joe stored, with no execution at the broker, over-sells Joe's books."""
    tws = Tws()
    tws.execute(tws.order("BUY", 1), 1)
    fills = [*tws.stored(), Fill("est-1", "joe-x", "AAPL", Side.SELL, D(2), D(100), T0)]
    reversal, _ = _judge(tws, fills)
    assert reversal == ["in Joe's store: AAPL: Joe's sell est-1 (joe-x -2) left Joe holding -1"]


# --------------------------------------------------------------------------- hypothesis: exactly those
# An action: ("buy" | "sell", qty) a new execution of Joe's; ("correct", k, qty) a new quantity for
# the k-th execution so far (modulo their number).
_actions = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 5)),
        st.tuples(st.just("correct"), st.integers(0, 20), st.integers(0, 5)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_actions)
def test_the_walk_flags_exactly_the_sells_that_take_the_then_position_below_zero(acts: list[Any]) -> None:
    execs: list[Exec] = []
    qty: dict[str, int] = {}  # the model: each identity's current quantity (signed)
    sign: dict[str, int] = {}
    expected: list[str] = []
    for a in acts:
        if a[0] == "correct":
            if not execs:
                continue
            ids = list(sign)
            fid = ids[a[1] % len(ids)]
            qty[fid] = sign[fid] * a[2]
            execs.append(Exec(fid, "AAPL", D(qty[fid]), True, correction=True))
            continue
        fid = f"e{len(sign)}"
        sign[fid] = 1 if a[0] == "buy" else -1
        qty[fid] = sign[fid] * a[1]
        execs.append(Exec(fid, "AAPL", D(qty[fid]), True, ref=fid))
        if a[0] == "sell" and sum(qty.values()) < 0:
            expected.append(fid)
    w = walk(execs)
    assert [r.split(" ")[3] for r in w.reversals] == expected
    assert w.held.get("AAPL", D(0)) == sum(qty.values())
    # Joe's store, equal to the broker (each identity at its last revision), finds the same.
    stored = [Fill(fid, fid, "AAPL", Side.BUY if sign[fid] > 0 else Side.SELL, D(abs(q)), D(1), T0)
              for fid, q in qty.items()]  # fmt: skip
    assert [r.split(" ")[3] for r in walk(as_stored(execs, stored)).reversals] == expected


@settings(max_examples=100, deadline=None)
@given(_actions)
def test_the_ibkr_world_timeline_is_the_books_executions(acts: list[Any]) -> None:
    """The same sequences on the simulator's book: `IbkrWorld.timeline` walks to the book's position
    and flags the sells that left the book's position (only Joe trades) below zero when they filled."""
    tws = Tws()
    done: list[tuple[BookOrder, Execution]] = []
    expected = []
    for a in acts:
        if a[0] == "correct":
            if done:
                bo, ex = done[a[1] % len(done)]
                ex = tws.correct(bo, ex, a[2])  # clamped by the book to the order's size
                done[a[1] % len(done)] = (bo, ex)
            continue
        bo = tws.order("BUY" if a[0] == "buy" else "SELL", a[1])
        done.append((bo, tws.execute(bo, a[1])))
        if a[0] == "sell" and tws.book.positions["AAPL"].qty < 0:
            expected.append(bo.placed.order_ref)
    w = walk(tws.world.timeline())
    assert [r.split(" ")[4].lstrip("(") for r in w.reversals] == expected
    assert w.held.get("AAPL", D(0)) == tws.world.positions().get("AAPL", D(0))
