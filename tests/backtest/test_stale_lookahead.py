"""Issue 17, no look-ahead: a series that stops just before a gap in the whole market's data.

The quality stage counts a series' lag in its exchange's sessions, not in the panel's rows: at a
`--to` just after a market-wide gap of a few sessions, a series whose last bar came before the gap is
stale (an error, excluded) although the panel has only one row after its last bar. The days before the
gap saw it fresh, so they must replay on the market loaded up to the day before the exclusion, never on
the load that excludes it (the finding is dated at the last day, the first day that could see it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig
from joe.data.calendars import load_exchange_calendar

# NYSE sessions (no holidays): the series keep their exchange's calendar, so lags count sessions.
SESSIONS = pd.DatetimeIndex(load_exchange_calendar("XNYS").sessions_in_range("2020-01-02", "2021-06-30"))[
    :330
]
START, CUT, GAP = SESSIONS[150].date(), SESSIONS[250].date(), 5  # 5 sessions missing > stale_sessions (3)


def _gap_after_cut(src: Path, dst: Path, gone: str) -> None:
    """Every file's rows after CUT move GAP sessions later (prices unchanged: no jump across the gap),
    and `gone`'s rows after CUT are dropped (its last bar is CUT)."""
    dst.mkdir()
    shift = {
        d.strftime("%Y-%m-%d"): SESSIONS[i + GAP].strftime("%Y-%m-%d") for i, d in enumerate(SESSIONS[:-GAP])
    }
    for f in sorted(src.glob("*.csv")):
        df = pd.read_csv(f, dtype={"date": str})
        after = pd.to_datetime(df["date"]).dt.date > CUT
        if f.stem == gone:
            df = df[~after]
        else:
            df = df[~after | df["date"].isin(shift)]
            df.loc[after, "date"] = df.loc[after, "date"].map(shift)
        df.to_csv(dst / f.name, index=False)


def test_a_series_ending_before_a_market_gap_is_not_excluded_from_the_days_before(
    tmp_path: Path, market_writer: Callable[..., Path]
) -> None:
    cfg = ExecutionConfig()
    market = market_writer(tmp_path / "market", SESSIONS)
    short_source = f"csv:{market}"
    short = run_on_history(
        load_history_sync(short_source, cfg, end=CUT), cfg, BacktestOptions(short_source, START, CUT)
    )
    gone = Counter(f.symbol for f in short.fills).most_common(1)[0][0]  # its exclusion must matter
    _gap_after_cut(market, tmp_path / "gapped", gone)
    source = f"csv:{tmp_path / 'gapped'}"
    to = SESSIONS[251 + GAP].date()  # the first day after the gap
    history = load_history_sync(source, cfg, end=to)
    assert [d.date() for d in history.panel.dates[-2:]] == [CUT, to]  # one row after its last bar
    stale = [f for f in history.snap.quality.findings if f.symbol == gone and f.check == "stale"]
    assert stale and stale[0].severity == "error"  # at `to` the stage excludes it (5 sessions behind)
    assert history.earlier is not None and history.earlier.panel.dates[-1].date() == CUT

    longer = run_on_history(history, cfg, BacktestOptions(source, START, to))
    prefix = [d for d in longer.days if d.day <= CUT]
    assert len(prefix) == len(short.days) > 40
    assert prefix == short.days
    assert [f for f in longer.fills if f.ts.date() <= CUT] == [f for f in short.fills if f.ts.date() <= CUT]
