"""Issue 14: the daemon's bot-side backup stop across a split (`joe.execution.monitor_splits`).

A stop Joe recorded before a 4-for-1 split meets post-split quotes a quarter of it: without the guard
every long looks stopped out and the monitor asks for a market exit of the whole position. A split-like
jump holds the position (no backup exit, no trail; the broker's stop stays) until `apply_split`
adjusts it; a real move that is no split's factor still gets its backup exit.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from joe.core.events import AuditSink
from joe.core.models import Side
from joe.data.splits import RATIOS
from joe.execution.monitor_splits import MIN_FACTOR, SplitSuspect, split_like
from joe.execution.position_monitor import PositionMonitor
from joe.execution.protection import ExitReason, TriggerKind

from .helpers import Requests, S, batch, pos


class Audit(AuditSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def record(self, event: str, payload: dict[str, object] | None = None, **_: object) -> None:  # type: ignore[override]
        self.events.append((event, dict(payload or {})))


def make(grace_s: float = 5.0) -> tuple[PositionMonitor, Requests, list[SplitSuspect], Audit]:
    from joe.execution.quotes import InstrumentIndex

    req, audit = Requests(), Audit()
    mon = PositionMonitor(InstrumentIndex(), req, grace_s=grace_s, audit=audit, clock_ns=lambda: 0)
    seen: list[SplitSuspect] = []
    mon.split_listeners.append(seen.append)
    return mon, req, seen, audit


GUARDED = [float(r) for r in RATIOS if max(float(r), 1 / float(r)) >= MIN_FACTOR]


@pytest.mark.parametrize("ratio", [4.0, 2.0, 1.5, 3.0, 10.0])
def test_a_forward_split_does_not_stop_out_a_long_and_apply_split_adjusts_it(ratio: float) -> None:
    mon, req, seen, audit = make()
    mon.add(pos("a", stop="95", tp="120", qty="12"))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.4 / ratio, 100)]))  # the next session's open
    mon.tick(100 * S + 60 * S)  # far beyond the grace period
    assert req.exits == []  # no market exit of the whole position
    assert mon.split_held("a")
    assert [(s.symbol, s.ratio, s.positions) for s in seen] == [("AAA", ratio, ("a",))]
    assert any(e == "monitor.split_suspected" for e, _ in audit.events)

    r = (
        Decimal(Fraction(ratio).limit_denominator(100).numerator)
        / Fraction(ratio).limit_denominator(100).denominator
    )
    assert mon.apply_split("AAA", ratio) == ["a"]
    assert not mon.split_held("a")
    assert mon.quantity_of("a") == Decimal(12) * r
    assert mon.stop_of("a") == Decimal(95) / r
    # cost basis unchanged: quantity × entry
    assert abs(mon.quantity_of("a") * mon._get("a").spec.entry_price - Decimal(1200)) < Decimal("1e-9")
    # The adjusted stop is live again: a real fall through it gets the backup exit, of the new size.
    mon.on_batch(batch(mon.instruments, [("AAA", 94.0 / ratio, 200)]))
    mon.tick(260 * S)
    assert [(e.position_id, e.reason, e.quantity) for e in req.exits] == [
        ("a", ExitReason.BACKUP_STOP, Decimal(12) * r)
    ]


@pytest.mark.parametrize("ratio", [0.5, 0.1, 0.2])
def test_a_reverse_split_does_not_stop_out_a_short(ratio: float) -> None:
    mon, req, seen, _ = make()
    mon.add(pos("s", side=Side.SELL, entry="10", stop="11", tp="8"))
    triggers: list[object] = []
    mon.listeners.append(triggers.append)
    mon.on_batch(batch(mon.instruments, [("AAA", 10.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 10.0 / ratio, 100)]))
    mon.tick(200 * S)
    assert req.exits == [] and mon.split_held("s") and seen[0].ratio == ratio
    mon.apply_split("AAA", ratio)
    assert mon.stop_of("s") == Decimal(11) / Decimal(str(ratio))
    mon.on_batch(batch(mon.instruments, [("AAA", 10.0 / ratio, 300)]))  # between the adjusted levels
    mon.tick(400 * S)
    assert req.exits == []


@pytest.mark.parametrize("price", [60.0, 80.0, 90.0, 45.0])
def test_a_real_gap_that_is_no_guarded_split_factor_still_gets_its_backup_exit(price: float) -> None:
    # 100 → 60 (×1.67), 80 (a 5-for-4's factor is not guarded: too often a real gap), 90, 45 (×2.22)
    mon, req, seen, _ = make()
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", price, 2)]))
    mon.tick(10 * S)
    assert seen == [] and [e.reason for e in req.exits] == [ExitReason.BACKUP_STOP]


def test_a_bad_tick_that_comes_back_releases_the_hold() -> None:
    mon, req, _, _ = make()
    mon.add(pos("a", stop="95"))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 50.0, 2)]))  # a 2-for-1's factor ...
    assert mon.split_held("a")
    mon.on_batch(batch(mon.instruments, [("AAA", 99.5, 3)]))  # ... undone: it was a bad tick
    assert not mon.split_held("a")
    mon.on_batch(batch(mon.instruments, [("AAA", 94.0, 4)]))
    mon.tick(20 * S)
    assert [e.position_id for e in req.exits] == ["a"]


def test_first_quote_already_split_is_judged_against_the_entry_price() -> None:
    mon, req, seen, _ = make()
    mon.add(pos("a", entry="100", stop="95"))
    mon.on_batch(batch(mon.instruments, [("AAA", 25.2, 1)]))  # no mark before: the entry is the reference
    mon.tick(30 * S)
    assert req.exits == [] and seen[0].ratio == 4.0 and seen[0].reference == 100.0


def test_trailing_is_suspended_while_held_and_its_distance_follows_the_split() -> None:
    mon, req, _, _ = make()
    mon.add(pos("s", side=Side.SELL, entry="100", stop="110", trail=("10", "1")))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 50.0, 2), ("AAA", 49.0, 3)]))
    assert req.modifies == []  # a 2-for-1 is no reason to pull a short's stop down to 59
    mon.apply_split("AAA", 2)
    assert mon._get("s").spec.trailing is not None
    assert mon._get("s").spec.trailing.distance == Decimal(5)  # type: ignore[union-attr]
    mon.on_batch(batch(mon.instruments, [("AAA", 47.0, 4)]))
    # stop 55 trails at 47 + 5 = 52: three whole steps of 1 (0.5 after the split: six)
    assert [m.new_stop for m in req.modifies] == [Decimal("52.0")]


def test_other_instruments_and_targets_are_untouched() -> None:
    mon, req, seen, _ = make()
    mon.add(pos("a", "AAA", stop="95"))
    mon.add(pos("b", "BBB", entry="50", stop="45"))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1), ("BBB", 50.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 25.0, 2), ("BBB", 44.0, 2)]))
    mon.tick(20 * S)
    assert [e.position_id for e in req.exits] == ["b"] and [s.symbol for s in seen] == ["AAA"]


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(0, len(GUARDED) - 1),
    noise=st.floats(-0.04, 0.04),
    stop_frac=st.floats(0.5, 0.99),
    long=st.booleans(),
)
@example(k=GUARDED.index(4.0), noise=0.0, stop_frac=0.9, long=True)
def test_property_no_backup_exit_on_any_guarded_split(
    k: int, noise: float, stop_frac: float, long: bool
) -> None:
    ratio = GUARDED[k]
    assert split_like(100.0, 100.0 / ratio * math.exp(noise)) == ratio
    mon, req, seen, _ = make(grace_s=0)
    stop = 100 * stop_frac if long else 100 / stop_frac
    mon.add(pos("p", side=Side.BUY if long else Side.SELL, stop=f"{stop:.4f}"))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0, 1)]))
    mon.on_batch(batch(mon.instruments, [("AAA", 100.0 / ratio * math.exp(noise), 2)]))
    mon.tick(100 * S)
    assert req.exits == []
    assert [s.ratio for s in seen] == [ratio]


def test_trigger_kinds_unchanged() -> None:  # the split guard adds no trigger kind
    assert {t.value for t in TriggerKind} >= {"stop", "take_profit"}


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(0, len(GUARDED) - 1),
    steps=st.lists(st.floats(-0.09, 0.09), min_size=1, max_size=30),
    cut=st.integers(1, 40),
)
def test_property_a_split_jump_after_any_drift_is_caught_wherever_it_falls_in_a_batch(
    k: int, steps: list[float], cut: int
) -> None:
    """The monitor looks only at quotes outside its nearest levels (narrowed to a band around the
    mark they were set at): after a drift of small moves that never left that band on their own, a
    split-sized jump from the previous quote is still checked, even in the middle of a batch."""
    ratio = GUARDED[k]
    mon, req, seen, _ = make(grace_s=0)
    mon.add(pos("p", entry="100", stop="0.001"))  # a stop no drift or split reaches
    mids = [100.0]
    for s in steps:
        mids.append(mids[-1] * math.exp(s))
    mids.append(mids[-1] / ratio)
    quotes = [("AAA", m, i + 1) for i, m in enumerate(mids)]
    for i in range(0, len(quotes), cut):
        mon.on_batch(batch(mon.instruments, quotes[i : i + cut]))
    assert [s.ratio for s in seen] == [ratio]
    assert seen[0].reference == pytest.approx(mids[-2])
    assert mon.split_held("p") and req.exits == []
