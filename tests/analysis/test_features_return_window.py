"""`Features.return_window` reads the window's flatness and its centred row from one centring: it must
say what `flat` (np.std == 0) and the centring `pearson_rows` uses said, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from joe.analysis.features import Features, flat
from joe.analysis.panel import Panel

prices = st.one_of(
    st.floats(1.0, 200.0, allow_nan=False),
    st.sampled_from([np.nan, 10.0, 10.0 + 1e-12, 50.0]),  # gaps, constant runs, near-constant ones
)


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 90).flatmap(lambda n: arrays(np.float64, n, elements=prices)), st.data())
def test_return_window_reads_flat_and_centred_as_before(close: np.ndarray, data: st.DataObject) -> None:
    n = len(close)
    panel = Panel(pd.bdate_range("2022-01-03", periods=n, tz="UTC"), ["X"],
                  *(close[:, None],) * 4, np.ones((n, 1)))  # fmt: skip
    f = Features(panel)
    t = data.draw(st.integers(0, n - 1))
    window = data.draw(st.integers(1, 70))
    got = f.return_window("X", t, window)
    values = f.log_returns("X")[max(0, t - window + 1) : t + 1]
    assert np.array_equal(got.values, values, equal_nan=True)
    assert got.full == bool(np.isfinite(values).all())
    with np.errstate(all="ignore"):
        assert got.flat == (got.full and flat(values))
        if got.full and not got.flat:
            want = values - np.add.reduce(values) / len(values)
            assert got.centred is not None
            assert got.centred.tobytes() == want.tobytes()
        else:
            assert got.centred is None


def test_a_constant_window_is_flat_and_a_moving_one_is_centred() -> None:
    close = np.array([10.0] * 30 + [10.0 * 1.01**k for k in range(1, 31)])
    n = len(close)
    panel = Panel(pd.bdate_range("2022-01-03", periods=n, tz="UTC"), ["X"],
                  *(close[:, None],) * 4, np.ones((n, 1)))  # fmt: skip
    f = Features(panel)
    still = f.return_window("X", 29, 20)
    assert still.full and still.flat and still.centred is None
    moving = f.return_window("X", n - 1, 20)
    assert moving.full and not moving.flat and moving.centred is not None
    assert abs(float(moving.centred.sum())) < 1e-12


def test_correlations_with_no_other_held_symbol_read_no_window() -> None:
    """No pair to correlate (nothing held, or only the symbol itself): `{}` as before, without computing
    the symbol's own return window."""
    from joe.analysis.risk import RiskProfiler

    rng = np.random.default_rng(3)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (120, 2)), axis=0))
    panel = Panel(pd.bdate_range("2022-01-03", periods=120, tz="UTC"), ["A", "B"],
                  close, close, close, close, np.ones((120, 2)))  # fmt: skip
    f = Features(panel)
    for others in (set(), {"A"}):
        assert RiskProfiler._correlations(f, panel, "A", 100, others) == {}
        assert f._windows == {}
    got = RiskProfiler._correlations(f, panel, "A", 100, {"A", "B"})
    assert set(got) == {"B"} and "A" in f._windows
