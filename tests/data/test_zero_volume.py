"""Issue 14 (r14 review #2): a volume column of zeros is no volume (indices and FX from many vendors
write 0): flagged `volume_unknown`, the volume score left out and liquidity not graded - never read as
a known volume of 0 (a neutral 50 volume score and a symbol silently dropped as illiquid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, snapshot, write_csv

from joe.data.quality import check_bars


@pytest.mark.parametrize("zero_share", [1.0, 0.8])
def test_a_volume_column_of_zeros_is_unknown_volume(tmp_path: Path, zero_share: float) -> None:
    df = ohlcv(300, seed=7)
    n_zero = round(300 * zero_share)
    df.iloc[:n_zero, df.columns.get_loc("volume")] = 0.0  # the recent bars keep a volume when < 100%
    if zero_share < 1:  # ...but the as-of bar too has none, as such files do
        df.iloc[-1, df.columns.get_loc("volume")] = 0.0
    write_csv(tmp_path, "IDX", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("IDX")
    assert (f.severity, f.check) == ("warning", "volume_unknown")
    assert f"zero or missing on {n_zero if zero_share == 1 else n_zero + 1} of 300 bars" in f.message
    assert "IDX" in snap.panel
    assert np.isnan(snap.panel.volume[:, snap.panel.col("IDX")]).all()  # no reading, not 0
    assert not snap.quality.for_symbol("OK")


def test_a_series_with_volume_keeps_it_and_names_its_zero_bars(tmp_path: Path) -> None:
    df = ohlcv(300, seed=8)
    df.iloc[[40, 41], df.columns.get_loc("volume")] = 0.0
    write_csv(tmp_path, "VOL", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("VOL")
    assert (f.severity, f.check, f.row) == ("warning", "volume_missing", 42)
    assert np.isfinite(snap.panel.volume[:, snap.panel.col("VOL")]).sum() == 300


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 5000), zeros=st.integers(0, 300))
def test_property_volume_is_known_exactly_when_most_bars_have_one(seed: int, zeros: int) -> None:
    """Volume on more than half the bars is a volume (its zero bars named); on half or fewer it is
    unknown (NaN everywhere, `volume_unknown`) - whichever bars the zeros fall on."""
    df = ohlcv(300, seed=seed)
    rng = np.random.default_rng(seed)
    rows = rng.choice(299, size=min(zeros, 299), replace=False)  # never the as-of bar (its own error)
    df.iloc[rows, df.columns.get_loc("volume")] = 0.0
    fields = {k: df[k].to_numpy(np.float64)[:, None] for k in ("open", "high", "low", "close", "volume")}
    res = check_bars(pd.DatetimeIndex(df.index, tz="UTC"), ["X"], fields)
    checks = {f.check for f in res.report.findings}
    known = (300 - len(rows)) * 2 > 300
    assert ("volume_unknown" in checks) == (not known)
    assert np.isnan(res.fields["volume"][:, 0]).all() == (not known)
    assert ("volume_missing" in checks) == (known and len(rows) > 0)
