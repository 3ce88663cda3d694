"""Issue 14 (r14 review #5b): a file too short to be scored says so (`thin_history`), instead of
loading without a word and never appearing in the scores (scoring needs a 50-bar average)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_data_quality import ohlcv, snapshot, write_csv

from joe.data.calendars import sessions_between


def _last_sessions(n: int) -> pd.DataFrame:
    """The last `n` bars of a 300-bar series, dated on NYSE sessions (no holiday row to leave out)."""
    days = sessions_between("XNYS", np.datetime64("2022-06-01"), np.datetime64("2023-02-24"))[-n:]
    return ohlcv(300, seed=7).iloc[-n:].set_axis(pd.DatetimeIndex(days).tz_localize(None))


@pytest.mark.parametrize("n", [1, 2, 5, 49])
def test_a_file_too_short_to_score_is_named(tmp_path: Path, n: int) -> None:
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    write_csv(tmp_path, "NEW", _last_sessions(n))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("NEW")
    assert (f.severity, f.check, f.file) == ("warning", "thin_history", "NEW.csv")
    assert f.message.startswith(f"only {n} bar(s): not scored until it has 50")
    assert not snap.quality.for_symbol("OK")


def test_fifty_bars_are_enough(tmp_path: Path) -> None:
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    write_csv(tmp_path, "NEW", _last_sessions(50))
    assert not snapshot(tmp_path).quality.for_symbol("NEW")
