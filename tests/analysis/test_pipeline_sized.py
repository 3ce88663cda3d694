"""`pipeline.sized` is `dataclasses.replace(sig, quantity=..., risk_grade=...)` (the risk stage's sized
signal), built without replace's per-call field walk: every field the same, `meta` the same object."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.pipeline import sized
from joe.core.models import Direction, Signal

money = st.decimals(Decimal("0.01"), Decimal("1000"), places=2)


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    entry = draw(money)
    below, above = draw(money), draw(money)
    long = draw(st.booleans())
    stop, target = (entry - below, entry + above) if long else (entry + below, entry - above)
    return Signal(
        draw(st.text(min_size=1, max_size=12)),
        draw(st.sampled_from(["AAA", "BBB", "EURUSD"])),
        draw(st.sampled_from(["trend", "breakout"])),
        Direction.LONG if long else Direction.SHORT,
        entry,
        stop,
        target,
        draw(st.floats(0, 1)),
        draw(st.text(max_size=20)),
        datetime(2024, 5, draw(st.integers(1, 28)), tzinfo=UTC),
        draw(st.none() | money),
        draw(st.none() | st.floats(-100, 100)),
        draw(st.none() | money),
        draw(st.none() | st.sampled_from("ABCD")),
        draw(st.dictionaries(st.sampled_from(["k", "why"]), st.integers())),
    )


@settings(max_examples=300, deadline=None)
@given(signals(), st.decimals(Decimal(0), Decimal(10_000), places=4), st.sampled_from("ABCD"))
def test_sized_is_dataclasses_replace(sig: Signal, qty: Decimal, grade: str) -> None:
    want = dataclasses.replace(sig, quantity=qty, risk_grade=grade)
    got = sized(sig, qty, grade)
    assert type(got) is Signal
    for f in dataclasses.fields(Signal):
        assert getattr(got, f.name) == getattr(want, f.name), f.name
    assert got.meta is sig.meta  # replace passes the same dict on
    assert got.quantity is qty and got.risk_grade == grade


def test_sized_checks_the_geometry_as_the_constructor_does() -> None:
    sig = Signal("s", "A", "t", Direction.LONG, Decimal(10), Decimal(9), Decimal(12), 0.5, "r",
                 datetime(2024, 5, 2, tzinfo=UTC))  # fmt: skip
    bad = object.__new__(Signal)  # a signal whose levels are inconsistent (bypassing the check)
    for f in dataclasses.fields(Signal):
        object.__setattr__(bad, f.name, getattr(sig, f.name))
    object.__setattr__(bad, "stop_loss", Decimal(11))
    with pytest.raises(ValueError, match="inconsistent geometry"):
        dataclasses.replace(bad, quantity=Decimal(1), risk_grade="A")
    with pytest.raises(ValueError, match="inconsistent geometry"):
        sized(bad, Decimal(1), "A")
