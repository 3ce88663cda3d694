"""The RiskGate's daily returns (`paper_book._returns`) equal pandas' `pct_change` frame exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from joe.safety.paper_book import _returns

closes = st.one_of(
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    st.just(float("nan")),
    st.just(0.0),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(0, 30), st.data())
def test_returns_equal_pct_change(n_cols: int, n_rows: int, data: st.DataObject) -> None:
    index = pd.date_range("2020-01-01", periods=n_rows, freq="B", tz="UTC")
    cols = {f"S{k}": data.draw(arrays(np.float64, n_rows, elements=closes)) for k in range(max(n_cols, 1))}
    want = pd.DataFrame(cols, index=index).pct_change(fill_method=None).iloc[1:]
    got = _returns(cols, index)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=False)
    assert np.array_equal(got.to_numpy(), want.to_numpy(), equal_nan=True)
    assert list(got.columns) == list(want.columns) and got.index.equals(want.index)
