"""LevelBook (the monitor's per-instrument levels) against a plain dict of armed levels."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from joe.execution.levels import LevelBook

levels = st.one_of(st.just(math.nan), st.integers(90, 110).map(float))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), st.integers(0, 7), levels, levels),
        st.tuples(st.just("disarm"), st.integers(0, 7)),
        st.tuples(st.just("cross"), st.integers(88, 112).map(float)),
    ),
    max_size=300,
)


@settings(max_examples=80, deadline=None)
@given(ops=ops)
def test_levels_cross_as_a_plain_dict_of_armed_levels_says(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Arming (NaN keeps a side as it is), moving, disarming and crossing in any order: the tops and
    every crossing are what scanning all armed levels gives, nearest first (ties by slot are free)."""
    book = LevelBook()
    lower: dict[int, float] = {}
    upper: dict[int, float] = {}
    for op in ops:
        if op[0] == "arm":
            _, slot, lo, up = op
            book.arm(slot, lo, up)
            if not math.isnan(lo):
                lower[slot] = lo
            if not math.isnan(up):
                upper[slot] = up
        elif op[0] == "disarm":
            book.disarm(op[1])
            lower.pop(op[1], None)
            upper.pop(op[1], None)
        else:
            price = op[1]
            want_lo = [s for s, v in lower.items() if v >= price]
            want_up = [s for s, v in upper.items() if v <= price]
            got_lo, got_up = book.pop_crossed(price)
            assert sorted(got_lo) == sorted(want_lo) and sorted(got_up) == sorted(want_up)
            assert [lower[s] for s in got_lo] == sorted((lower[s] for s in got_lo), reverse=True)
            assert [upper[s] for s in got_up] == sorted(upper[s] for s in got_up)
            for s in got_lo:
                del lower[s]
            for s in got_up:
                del upper[s]
        assert book.lower_top() == max(lower.values(), default=-math.inf)
        assert book.upper_top() == min(upper.values(), default=math.inf)
        assert len(book) == len(lower) + len(upper)


@settings(max_examples=40, deadline=None)
@given(live=st.integers(0, 300), rounds=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_dead_entries_never_dominate_a_big_heap(live: int, rounds: int, seed: int) -> None:
    """Disarming and re-arming (a strategy closing and re-opening) leaves dead entries in the heaps;
    after 64 arms they are rebuilt away: each heap holds at most 4× its live levels (or 64) + 128."""
    import random

    rng = random.Random(seed)
    book = LevelBook()
    for _ in range(rounds):
        for slot in range(live + 50):
            if rng.random() < 0.5:
                book.disarm(slot)
        for _ in range(64):
            book.arm(rng.randrange(live + 50), 90 + rng.random(), 110 + rng.random())
        assert len(book._lower) <= max(64, 4 * len(book._lower_armed)) + 128
        assert len(book._upper) <= max(64, 4 * len(book._upper_armed)) + 128
