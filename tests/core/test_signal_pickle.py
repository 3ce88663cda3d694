"""`Signal` crosses process boundaries (a backtest's analysis worker sends each day's signals): its own
`__getstate__`/`__setstate__` give back an equal signal, every field and its type as sent."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.core.models import Direction, Signal

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10_000), places=4)


@given(
    entry=prices,
    up=prices,
    down=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9"), places=4),
    long=st.booleans(),
    trailing=st.none() | prices,
    score=st.none() | st.floats(allow_nan=False),
    quantity=st.none() | prices,
    grade=st.none() | st.sampled_from("ABCD"),
    meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    days=st.integers(0, 20_000),
)
def test_a_signal_comes_back_from_a_pickle_as_it_was(
    entry: Decimal, up: Decimal, down: Decimal, long: bool, trailing: Decimal | None, score: float | None,
    quantity: Decimal | None, grade: str | None, meta: dict[str, object], days: int,
) -> None:  # fmt: skip
    below, above = entry * (1 - down), entry + up
    sig = Signal(
        "sig-1", "AAPL", "trend", Direction.LONG if long else Direction.SHORT, entry,
        below if long else above, above if long else below, 0.5, "why",
        datetime(1990, 1, 1, tzinfo=UTC) + timedelta(days=days), trailing, score, quantity, grade, meta,
    )  # fmt: skip
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(sig, protocol))
        assert back == sig and back.meta == sig.meta
        assert [type(getattr(back, f)) for f in Signal.__dataclass_fields__] == [
            type(getattr(sig, f)) for f in Signal.__dataclass_fields__
        ]
        assert back.direction is sig.direction


def test_a_state_of_the_wrong_shape_is_refused() -> None:
    """A state from another version of `Signal` (a field more or less) is an error, not a signal with
    its fields shifted by one."""
    sig = Signal("s", "X", "t", Direction.LONG, Decimal(10), Decimal(9), Decimal(12), 0.5, "r",
                 datetime(2020, 1, 1, tzinfo=UTC))  # fmt: skip
    blank = Signal.__new__(Signal)
    with pytest.raises(ValueError):
        blank.__setstate__(sig.__getstate__()[:-1])
