"""PositionMonitor: crossings in quote order, backup exits (exactly once), trailing stops that only
tighten through broker-confirmed modifies, time exits, marks and unrealised PnL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.models import Side
from joe.execution.position_monitor import PositionMonitor
from joe.execution.protection import ExitReason, RestingStop, Trigger, TriggerKind
from joe.execution.quotes import InstrumentIndex, QuoteBatch

from .helpers import Requests, S, batch, pos


def make(grace_s: float = 5.0) -> tuple[PositionMonitor, Requests, InstrumentIndex, list[Trigger]]:
    idx = InstrumentIndex()
    req = Requests()
    mon = PositionMonitor(idx, req, grace_s=grace_s, clock_ns=lambda: 0)
    seen: list[Trigger] = []
    mon.listeners.append(seen.append)
    return mon, req, idx, seen


# -- crossings ------------------------------------------------------------------------------------


def test_long_stop_and_target_fire_once_at_the_crossing_quote() -> None:
    mon, _req, idx, seen = make()
    mon.add(pos("a", stop="95", tp="110"))
    mon.on_batch(batch(idx, [("AAA", 100.0, 1), ("AAA", 96.0, 2), ("AAA", 95.0, 3), ("AAA", 94.0, 4)]))
    assert [(t.position_id, t.kind, t.level, t.price, t.ts_ns) for t in seen] == [
        ("a", TriggerKind.STOP, Decimal("95"), 95.0, 3 * S)
    ]


def test_short_position_stop_is_above_and_target_below() -> None:
    mon, _req, idx, seen = make()
    mon.add(pos("s", side=Side.SELL, entry="100", stop="105", tp="90"))
    mon.add(pos("t", side=Side.SELL, entry="100", stop="120", tp="92"))
    mon.on_batch(batch(idx, [("AAA", 104.9, 1), ("AAA", 105.0, 2)]))
    mon.on_batch(batch(idx, [("AAA", 92.0, 3)]))
    assert [(t.position_id, t.kind, t.ts_ns) for t in seen] == [
        ("s", TriggerKind.STOP, 2 * S),
        ("t", TriggerKind.TAKE_PROFIT, 3 * S),
    ]


def test_gap_through_both_levels_of_many_positions_orders_stops_first() -> None:
    mon, _req, idx, seen = make()
    mon.add(pos("long", stop="95", tp="101"))
    mon.add(pos("short", side=Side.SELL, stop="101.5", tp="90"))
    mon.on_batch(batch(idx, [("AAA", 102.0, 1)]))
    assert [(t.position_id, t.kind) for t in seen] == [
        ("short", TriggerKind.STOP),
        ("long", TriggerKind.TAKE_PROFIT),
    ]


def test_crossings_across_instruments_come_in_arrival_order() -> None:
    mon, _req, idx, seen = make()
    mon.add(pos("a", "AAA", stop="95"))
    mon.add(pos("b", "BBB", stop="45", entry="50"))
    mon.on_batch(batch(idx, [("AAA", 99.0, 1), ("BBB", 44.0, 2), ("AAA", 90.0, 3)]))
    assert [t.position_id for t in seen] == ["b", "a"]


def test_listener_changes_apply_to_the_rest_of_the_same_batch() -> None:
    # A listener opening a position on another instrument mid-batch: that position is checked from
    # the next quote of the batch on, never against earlier quotes.
    mon, _req, idx, seen = make()
    mon.add(pos("a", "AAA", stop="95"))

    def open_b(t: Trigger) -> None:
        if t.position_id == "a":
            mon.close("a")
            mon.add(pos("b", "BBB", entry="50", stop="48"))

    mon.listeners.insert(0, open_b)
    mon.on_batch(batch(idx, [("BBB", 40.0, 1), ("AAA", 94.0, 2), ("BBB", 49.0, 3), ("BBB", 47.0, 4)]))
    assert [(t.position_id, t.ts_ns) for t in seen] == [("a", 2 * S), ("b", 4 * S)]


quote_lists = st.lists(
    st.tuples(st.integers(0, 2), st.integers(900, 1100).map(lambda x: x / 10)), min_size=1, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(
    quotes=quote_lists,
    levels=st.lists(
        st.tuples(st.integers(0, 2), st.booleans(), st.integers(1, 150).map(lambda x: x / 10)),
        min_size=1,
        max_size=25,
    ),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=10),
)
def test_any_batching_gives_the_naive_per_quote_answer(
    quotes: list[tuple[int, float]], levels: list[tuple[int, bool, float]], cuts: list[int]
) -> None:
    """Positions (long or short, stop and target `w` away from 100) close on their first crossing;
    cutting the quotes into any batches gives the triggers a per-quote loop gives, in its order."""
    specs = []
    for n, (inst, long, w) in enumerate(levels):
        side = Side.BUY if long else Side.SELL
        stop, tp = (100 - w, 100 + w) if long else (100 + w, 100 - w)
        specs.append(pos(f"p{n}", f"I{inst}", side, stop=str(stop), tp=str(tp)))
    # naive: each quote, every open position in id order... then stops first, levels in heap order
    expected: list[tuple[str, TriggerKind, int]] = []
    open_ = {p.position_id: p for p in specs}
    for t, (inst, mid) in enumerate(quotes):
        hits = []
        for p in open_.values():
            if p.symbol != f"I{inst}":
                continue
            assert p.stop is not None and p.take_profit is not None
            s, tp = float(p.stop), float(p.take_profit)
            stop_hit = mid <= s if p.side is Side.BUY else mid >= s
            tp_hit = mid >= tp if p.side is Side.BUY else mid <= tp
            if stop_hit:
                hits.append((0, p.position_id, TriggerKind.STOP))
            elif tp_hit:
                hits.append((1, p.position_id, TriggerKind.TAKE_PROFIT))
        for _, pid, kind in sorted(hits, key=lambda h: h[0]):
            expected.append((pid, kind, t))
            del open_[pid]

    idx = InstrumentIndex()
    mon = PositionMonitor(idx, Requests())
    got: list[tuple[str, TriggerKind, int]] = []

    def fill(t: Trigger) -> None:
        got.append((t.position_id, t.kind, t.ts_ns))
        mon.close(t.position_id)

    mon.listeners.append(fill)
    for p in specs:
        mon.add(p)
    i = 0
    k = 0
    while i < len(quotes):
        n = cuts[k % len(cuts)]
        k += 1
        part = quotes[i : i + n]
        mon.on_batch(QuoteBatch.of([idx.id(f"I{q[0]}") for q in part], range(i, i + len(part)),
                                   [q[1] for q in part], [q[1] for q in part]))  # fmt: skip
        i += n
    # same set per quote; within one quote stops come before targets
    assert sorted(got) == sorted(expected)
    assert [(g[2], g[1] is TriggerKind.TAKE_PROFIT) for g in got] == sorted(
        (g[2], g[1] is TriggerKind.TAKE_PROFIT) for g in got
    )
    assert mon.quotes_seen == len(quotes)


# -- bot-side backup exit -------------------------------------------------------------------------


def test_stop_not_filled_past_grace_gives_exactly_one_reduce_only_exit() -> None:
    mon, req, idx, _seen = make(grace_s=5)
    mon.add(pos("a", qty="7", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 94.0, 10)]))  # through the stop; the broker should fill now
    mon.on_batch(batch(idx, [("AAA", 94.5, 14)]))
    mon.tick(14 * S + S - 1)
    assert req.exits == []
    mon.on_batch(batch(idx, [("AAA", 94.0, 15)]))  # 5 s through the stop, still open
    assert len(req.exits) == 1
    ex = req.exits[0]
    assert (ex.position_id, ex.side, ex.quantity, ex.reason, ex.reduce_only) == (
        "a",
        Side.SELL,
        Decimal("7"),
        ExitReason.BACKUP_STOP,
        True,
    )
    assert ex.client_order_id.startswith("joe-")
    for t in range(16, 40):  # more quotes through the stop, timer ticks: never a second exit
        mon.on_batch(batch(idx, [("AAA", 93.0, t)]))
        mon.tick(t * S)
    assert len(req.exits) == 1
    # a restart hands the same position to a monitor that already asked: still no second exit
    mon.add(pos("a", qty="7", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 100.0, 41), ("AAA", 90.0, 42)]))
    mon.tick(60 * S)
    assert len(req.exits) == 1
    assert mon.exit_requested("a")


def test_short_stop_not_filled_exits_with_a_buy() -> None:
    mon, req, idx, _seen = make(grace_s=1)
    mon.add(pos("s", side=Side.SELL, stop="105", tp=None))
    mon.on_batch(batch(idx, [("AAA", 106.0, 1), ("AAA", 107.0, 2)]))
    assert [(e.side, e.reason) for e in req.exits] == [(Side.BUY, ExitReason.BACKUP_STOP)]


def test_broker_fill_inside_grace_means_no_backup_exit() -> None:
    mon, req, idx, _seen = make(grace_s=5)
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 94.0, 1)]))
    mon.close("a")  # the broker's stop filled
    mon.on_batch(batch(idx, [("AAA", 90.0, 30)]))
    mon.tick(60 * S)
    assert req.exits == []


def test_price_back_above_the_stop_restarts_the_grace_clock() -> None:
    mon, req, idx, seen = make(grace_s=5)
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 94.0, 1)]))
    mon.on_batch(batch(idx, [("AAA", 96.0, 4)]))  # back on the safe side: re-armed
    mon.on_batch(batch(idx, [("AAA", 94.0, 5)]))  # a second crossing, a fresh grace period
    mon.on_batch(batch(idx, [("AAA", 94.0, 9)]))
    assert req.exits == []
    assert [t.ts_ns for t in seen] == [1 * S, 5 * S]
    mon.on_batch(batch(idx, [("AAA", 94.0, 10)]))
    assert len(req.exits) == 1


def test_grace_expires_on_the_timer_when_quotes_stop() -> None:
    mon, req, idx, _seen = make(grace_s=5)
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 94.0, 1)]))
    mon.tick(5 * S)
    assert req.exits == []
    mon.tick(6 * S)
    assert len(req.exits) == 1


def test_a_failing_requester_still_never_gets_a_second_exit() -> None:
    class Broken(Requests):
        def request_exit(self, request: object) -> None:
            self.exits.append(request)  # type: ignore[arg-type]
            raise RuntimeError("queue full")

    idx = InstrumentIndex()
    req = Broken()
    mon = PositionMonitor(idx, req, grace_s=0)
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(idx, [("AAA", 94.0, 1)]))
    mon.on_batch(batch(idx, [("AAA", 94.0, 2)]))
    mon.tick(10 * S)
    assert len(req.exits) == 1


# -- trailing stops -------------------------------------------------------------------------------


def test_trailing_stop_moves_in_steps_after_broker_confirmation_and_never_loosens() -> None:
    mon, req, idx, seen = make()
    mon.add(pos("a", entry="100", stop="95", trail=("5", "1")))
    mon.on_batch(batch(idx, [("AAA", 100.5, 1), ("AAA", 100.9, 2)]))
    assert req.modifies == []  # 100.9 - 5 = 95.9: less than a whole step
    mon.on_batch(batch(idx, [("AAA", 102.6, 3), ("AAA", 101.0, 4)]))
    assert [(m.old_stop, m.new_stop) for m in req.modifies] == [(Decimal("95"), Decimal("97"))]
    mon.on_batch(batch(idx, [("AAA", 104.0, 5)]))
    assert len(req.modifies) == 1  # one modify in flight at a time
    assert mon.stop_of("a") == Decimal("95")  # unconfirmed: the monitor checks the broker's level
    mon.confirm_stop("a", Decimal("97"))
    mon.on_batch(batch(idx, [("AAA", 103.0, 6)]))  # best so far 104 -> 99
    assert [m.new_stop for m in req.modifies] == [Decimal("97"), Decimal("99")]
    mon.confirm_stop("a", Decimal("99"))
    mon.on_batch(batch(idx, [("AAA", 100.0, 7), ("AAA", 99.5, 8)]))  # falling: the stop stays
    assert len(req.modifies) == 2
    mon.on_batch(batch(idx, [("AAA", 99.0, 9)]))
    assert [(t.kind, t.level) for t in seen] == [(TriggerKind.STOP, Decimal("99"))]
    assert all((m.new_stop > m.old_stop) for m in req.modifies)


def test_short_trailing_stop_moves_down() -> None:
    mon, req, idx, _seen = make()
    mon.add(pos("s", side=Side.SELL, entry="100", stop="104", trail=("3", "0.5")))
    mon.on_batch(batch(idx, [("AAA", 99.9, 1), ("AAA", 99.4, 2)]))
    assert [(m.old_stop, m.new_stop) for m in req.modifies] == [(Decimal("104"), Decimal("102.5"))]


def test_refused_modify_is_not_retried_at_quote_rate() -> None:
    mon, req, idx, _seen = make()
    mon.add(pos("a", entry="100", stop="95", trail=("5", "1")))
    mon.on_batch(batch(idx, [("AAA", 101.0, 1)]))
    assert [m.new_stop for m in req.modifies] == [Decimal("96")]
    mon.refuse_stop_modify("a")
    assert mon.stop_of("a") == Decimal("95")
    for t in range(2, 20):
        mon.on_batch(batch(idx, [("AAA", 101.0, t)]))
    assert len(req.modifies) == 1
    mon.on_batch(batch(idx, [("AAA", 102.0, 21)]))
    assert [m.new_stop for m in req.modifies] == [Decimal("96"), Decimal("97")]


# -- time exits, marks, protection ----------------------------------------------------------------


def test_time_exit_once_at_exit_at() -> None:
    mon, req, idx, _seen = make()
    at = datetime.fromtimestamp(100, UTC)
    mon.add(pos("a", exit_at=at))
    mon.on_batch(batch(idx, [("AAA", 100.0, 99)]))
    assert req.exits == []
    mon.on_batch(batch(idx, [("AAA", 100.0, 100)]))
    mon.tick(200 * S)
    assert [(e.reason, e.price) for e in req.exits] == [(ExitReason.TIME, 100.0)]


def test_time_exit_fires_on_the_timer_without_quotes() -> None:
    mon, req, _idx, _seen = make()
    mon.add(pos("a", exit_at=datetime.fromtimestamp(100, UTC)))
    mon.tick(101 * S)
    assert [e.reason for e in req.exits] == [ExitReason.TIME]


def test_marks_and_unrealised_pnl_follow_every_batch() -> None:
    mon, _req, idx, _seen = make()
    mon.add(pos("l", "AAA", qty="10", entry="100", stop="90"))
    mon.add(pos("s", "BBB", Side.SELL, qty="4", entry="50", stop="60"))
    assert mon.unrealised_total() == 0.0
    mon.on_batch(batch(idx, [("AAA", 101.0, 1), ("BBB", 49.0, 2), ("AAA", 102.0, 3)], spread=0.02))
    assert mon.mark("AAA") == pytest.approx(102.0)
    assert mon.unrealised("l") == pytest.approx(20.0)
    assert mon.unrealised("s") == pytest.approx(4.0)
    assert mon.unrealised_total() == pytest.approx(24.0)
    mon.resize("l", Decimal("5"))
    assert mon.unrealised_total() == pytest.approx(14.0)
    mon.close("s")
    assert mon.unrealised_total() == pytest.approx(10.0)
    assert mon.mark("ZZZ") is None


def test_protection_invariant_names_missing_and_wrong_size_stops() -> None:
    mon, _req, _idx, _seen = make()
    mon.add(pos("ok", qty="10"))
    mon.add(pos("none", qty="10"))
    mon.add(pos("small", qty="10"))

    class View:
        def resting_stop(self, position_id: str) -> RestingStop | None:
            return {
                "ok": RestingStop(Decimal(10), Decimal(95)),
                "small": RestingStop(Decimal(6), Decimal(95)),
            }.get(position_id)

    gaps = {g.position_id: g.problem for g in mon.check_protection(View())}
    assert gaps == {"none": "no resting stop at the broker", "small": "stop size 6 != position size 10"}


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"qty": "0"}, "quantity"),
        ({"entry": "-1"}, "entry_price"),
        ({"stop": "101", "tp": "100"}, "stop"),
        ({"stop": None, "trail": ("1", "1")}, "trailing"),
        ({"trail": ("0", "1")}, "distance"),
    ],
)
def test_bad_positions_are_refused_with_the_field_named(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        pos("x", **kw)  # type: ignore[arg-type]


def test_bad_quote_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        QuoteBatch.of([0, 1], [1], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive finite"):
        QuoteBatch.of([0], [1], [float("nan")], [1.0])


def test_re_added_position_keeps_only_its_new_exit_time() -> None:
    mon, req, _idx, _seen = make()
    mon.add(pos("a", exit_at=datetime.fromtimestamp(100, UTC)))
    mon.add(pos("a", exit_at=datetime.fromtimestamp(200, UTC)))  # the strategy moved the time exit
    mon.tick(150 * S)
    assert req.exits == []
    mon.tick(200 * S)
    assert [e.reason for e in req.exits] == [ExitReason.TIME]
