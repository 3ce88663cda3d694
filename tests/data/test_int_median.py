"""`joe.data.dates.int_median` is `np.median` of an integer array (the spacing of a file's bars)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from joe.data.dates import int_median


@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=50))
def test_equals_numpy_median(values: list[int]) -> None:
    a = np.array(values, dtype="int64")
    assert int_median(a) == float(np.median(a))


@given(st.lists(st.sampled_from([86_400, 3 * 86_400, 4 * 86_400, 300]), min_size=1, max_size=60))
def test_equals_numpy_median_on_repeated_steps(steps: list[int]) -> None:
    a = np.array(steps, dtype="int64") * 10**9
    assert int_median(a) == float(np.median(a))
