"""`features.flat` is `np.std(x) == 0` (the risk stage's test for a constant return window)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from joe.analysis.features import flat

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 0.1, 0.1 + 1e-17, 1e308]),
)


# np.std of an empty array warns "Degrees of freedom <= 0" (a warnings.warn, not an errstate case) and is
# NaN: flat([]) is False, which the assertion checks; the warning is not the question here.
@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")
@settings(max_examples=500, deadline=None)
@given(st.integers(0, 70).flatmap(lambda n: arrays(np.float64, n, elements=values)))
def test_flat_is_np_std_zero(x: np.ndarray) -> None:
    with np.errstate(all="ignore"):  # np.std and flat both warn on inf/overflow: not the question here
        assert flat(x) == bool(np.std(x) == 0)


@settings(max_examples=300, deadline=None)
@given(st.floats(-1, 1, allow_nan=False), st.integers(1, 70), st.integers(0, 69), st.floats(-1e-12, 1e-12))
def test_flat_on_near_constant_windows(v: float, n: int, i: int, eps: float) -> None:
    x = np.full(n, v)
    x[i % n] += eps
    with np.errstate(all="ignore"):
        assert flat(x) == bool(np.std(x) == 0)
