"""`since_on_broker_clock`: an executions window that holds every execution since `since`, whichever
clock `since` was read on (Joe's or the broker's), with the two clocks any distance apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from joe.core.reports import since_on_broker_clock

BASE = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
seconds = st.integers(min_value=-10 * 86400, max_value=10 * 86400)


@given(skew=seconds, back=st.integers(min_value=0, max_value=86400), late=st.integers(0, 86400))
def test_the_window_holds_every_execution_after_since_on_either_clock(
    skew: int, back: int, late: int
) -> None:
    """The broker's clock = Joe's + `skew`. An instant `back` seconds before now, read on Joe's clock
    or on the broker's, is a `since`; an execution at or after that instant (stamped on the broker's
    clock) is inside the window."""
    host_now = BASE
    broker_now = BASE + timedelta(seconds=skew)
    instant_broker = broker_now - timedelta(seconds=back)  # the instant, stamped by the broker
    execution = instant_broker + timedelta(seconds=min(late, back))  # at/after it, not after now
    for since in (host_now - timedelta(seconds=back), instant_broker):  # read on Joe's / the broker's
        start = since_on_broker_clock(since, broker_now, host_now)
        assert start <= execution
        assert start <= since  # only ever widened


@given(ahead=st.integers(min_value=0, max_value=10 * 86400), back=st.integers(0, 86400))
def test_a_broker_ahead_or_level_leaves_since_alone(ahead: int, back: int) -> None:
    since = BASE - timedelta(seconds=back)
    assert since_on_broker_clock(since, BASE + timedelta(seconds=ahead), BASE) == since


def test_a_broker_behind_moves_the_start_back_by_the_difference() -> None:
    since = BASE - timedelta(minutes=1)
    start = since_on_broker_clock(since, BASE - timedelta(hours=3), BASE)
    assert start == since - timedelta(hours=3)
