"""Issue 14, reviewer rounds 2-3, point 1: any real split (3-for-2, 5-for-4, 1-for-10 ...) is told from a
crash, also when the stock moves on the split day (a 2-for-1 with a +8% day).

A suspected split is adjusted by the ratio volume picks (or splits.csv gives), otherwise the symbol is
excluded; it is never traded as a crash, and never adjusted by an invented ratio (9-for-4, 7-for-4).
A crash with a crash's signature is not called a split.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, snapshot, write_csv
from typer.testing import CliRunner

from joe.cli.main import app
from joe.data import DataError, FileSource
from joe.data.quality import check_bars, check_frame
from joe.data.splits import BIG_WITHOUT_VOLUME, GAP_MAX, MIN_AFTER_BARS, RATIOS, SPIKE_BARS, parse_ratio

SPLITS = [
    (2, 1),
    (3, 1),
    (3, 2),
    (4, 3),
    (5, 4),
    (5, 2),
    (4, 1),
    (10, 1),
    (1, 2),
    (1, 10),
    (7, 1),
    (20, 1),
    (1, 5),
]
SPLIT_CHECKS = {"split", "unconfirmed_split"}


def bars(
    seed: int, n: int = 300, sigma: float = 0.012, price: float = 80.0, vol_sd: float = 0.3
) -> pd.DataFrame:
    """Daily OHLCV where the overnight gap and the intraday move are separate, as in real bars."""
    rng = np.random.default_rng(seed)
    gap = rng.normal(0.0003, sigma * 0.6, n)
    day = rng.normal(0.0, sigma * 0.8, n)
    close = np.empty(n)
    open_ = np.empty(n)
    prev = price
    for i in range(n):
        open_[i] = prev * math.exp(gap[i])
        close[i] = open_[i] * math.exp(day[i])
        prev = close[i]
    wick = np.abs(rng.normal(0, sigma * 0.4, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    vol = np.exp(rng.normal(math.log(1e6), vol_sd, n))
    idx = pd.bdate_range("2021-01-04", periods=n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=idx)


def split_at(df: pd.DataFrame, at: int, factor: float) -> pd.DataFrame:
    """Unadjusted bars of a split with price factor `factor` (2.0 for 2-for-1) effective at row `at`."""
    out = df.copy()
    out.iloc[at:, :4] /= factor
    out.iloc[at:, 4] *= factor
    return out


def close_only(df: pd.DataFrame) -> pd.DataFrame:
    return df[["close"]]


# -- every p:q, each way ---------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "q"), SPLITS)
def test_any_real_split_with_volume_is_adjusted_by_its_own_ratio(p: int, q: int) -> None:
    """Ten series each: adjusted by p/q, or (when noisy volume cannot tell a neighbouring ratio or no
    split) excluded - never adjusted by another ratio. Volume as noisy as a real stock's (30% a day)
    decides 2-for-1 and above nearly always. The small ratios (5-for-4, 4-for-3, 3-for-2: 6-12% apart,
    so a day's own move turns one into the other) need volume to rule the neighbour out by 4 noise sd
    (session 6, rule 5 of `joe.data.splits`), which 30%-a-day volume never does: adjusted only when
    the price itself rules the neighbour out (it would need a day beyond ±12%), else excluded with
    splits.csv offered."""
    neighbour = {(5, 4): "4-for-3", (4, 3): "5-for-4", (3, 2): "4-for-3"}.get((p, q))
    adjusted = 0
    for seed in range(10):
        truth = bars(seed=p * 100 + q * 10 + seed)
        at = 240
        got, rep = check_frame("SPLT", split_at(truth, at, p / q))
        (f,) = [f for f in rep.findings if f.check in SPLIT_CHECKS]
        assert f.date == truth.index[at].date().isoformat()
        if got is None:
            assert (f.severity, f.check) == ("error", "unconfirmed_split") and f"{p}-for-{q}" in f.message
            assert "splits.csv" in f.message
            continue
        assert (f.severity, f.check) == ("warning", "split") and f"{p}-for-{q} split" in f.message
        np.testing.assert_allclose(got["close"].to_numpy(), truth["close"].to_numpy() / (p / q), rtol=1e-9)
        adjusted += 1
    if neighbour is None:  # (with a neighbour: adjusted only when the day's move rules it out)
        assert adjusted >= 9


@pytest.mark.parametrize(("p", "q"), SPLITS)
@pytest.mark.parametrize("shape", ["ohlc_no_volume", "close_only"])
def test_a_split_nothing_confirms_excludes_the_symbol_and_says_how_to_fix(
    tmp_path: Path, p: int, q: int, shape: str
) -> None:
    """The reviewer's 2:1 in a file without volume was a warning and was shorted: now it is an error."""
    at = 250
    df = split_at(bars(seed=p + q), at, p / q).drop(columns="volume")
    write_csv(tmp_path, "SPLT", df if shape == "ohlc_no_volume" else close_only(df))
    write_csv(tmp_path, "OK", bars(seed=99))
    snap = snapshot(tmp_path)
    assert "SPLT" not in snap.panel and snap.quality.excluded == ["SPLT"]
    (f,) = [f for f in snap.quality.for_symbol("SPLT") if f.check in SPLIT_CHECKS]
    assert (f.severity, f.check, f.file, f.row) == ("error", "unconfirmed_split", "SPLT.csv", at + 2)
    day = df.index[at].date()
    assert f"{p}-for-{q} jump" in f.message and "split-adjusted prices" in f.message
    assert f"'SPLT,{day},{p}-for-{q}' in splits.csv" in f.message


@pytest.mark.parametrize(("p", "q"), [(3, 2), (5, 4), (1, 10)])
def test_a_split_listed_in_splits_csv_is_adjusted_without_volume(tmp_path: Path, p: int, q: int) -> None:
    truth = bars(seed=3).drop(columns="volume")
    at = 250
    write_csv(tmp_path, "SPLT", split_at(truth.assign(volume=np.nan), at, p / q).drop(columns="volume"))
    write_csv(tmp_path, "OK", bars(seed=4))
    day = truth.index[at].date()
    (tmp_path / "splits.csv").write_text(f"symbol,date,ratio\nSPLT,{day},{p}:{q}\n")
    snap = snapshot(tmp_path)
    assert "splits" not in snap.panel  # the splits file is not a symbol
    (f,) = [f for f in snap.quality.for_symbol("SPLT") if f.check in SPLIT_CHECKS]
    assert f.severity == "warning" and "confirmed in splits.csv row 2" in f.message
    got = snap.panel.close[:, snap.panel.col("SPLT")]
    np.testing.assert_allclose(got, truth["close"].to_numpy() / (p / q), rtol=1e-9)
    # A listed split with another ratio does not confirm this one.
    (tmp_path / "splits.csv").write_text(f"symbol,date,ratio\nSPLT,{day},7:1\n")
    assert snapshot(tmp_path).quality.excluded == ["SPLT"]


@pytest.mark.parametrize(
    ("text", "row"),
    [
        ("symbol,date,ratio\nA,2020-13-01,2:1\n", "row 2: date '2020-13-01'"),
        ("symbol,date,ratio\nA,2020-01-02,x\n", "row 2: ratio 'x'"),
        ("sym,when\n", "needs the columns"),
    ],
)
def test_a_bad_splits_file_is_refused_naming_the_row(tmp_path: Path, text: str, row: str) -> None:
    write_csv(tmp_path, "OK", bars(seed=4))
    (tmp_path / "SPLITS.csv").write_text(text)
    with pytest.raises(DataError, match=rf"SPLITS.csv: {row}".replace("(", r"\(")):
        FileSource(tmp_path)


@pytest.mark.parametrize(
    ("text", "value"), [("4:1", 4.0), ("3-for-2", 1.5), ("1:10", 0.1), ("2 for 3", 2 / 3), ("1.25", 1.25)]
)
def test_split_ratios_are_read_in_the_usual_spellings(text: str, value: float) -> None:
    assert parse_ratio(text) == pytest.approx(value)


# -- a crash is not a split --------------------------------------------------------------------------


def crash_at(df: pd.DataFrame, at: int, gap: float, intraday: float, volume_spike: float) -> pd.DataFrame:
    """A crash: prices from `at` on fall by exp(gap) at the open and exp(intraday) more during the day."""
    out = df.copy()
    out.iloc[at:, :4] *= math.exp(gap)
    o = out.iloc[at]["open"]
    c = o * math.exp(intraday)
    out.iloc[at, out.columns.get_loc("close")] = c
    out.iloc[at, out.columns.get_loc("high")] = o * 1.005
    out.iloc[at, out.columns.get_loc("low")] = c * 0.99
    out.iloc[at + 1 :, :4] *= c / df["close"].iloc[at] / math.exp(gap)
    out.iloc[at : at + 5, 4] *= volume_spike
    return out


def _far_from_ratios(log_move: float, margin: float = 0.05) -> bool:
    return all(abs(abs(log_move) - math.log(float(r))) > margin for r in RATIOS)


@pytest.mark.parametrize(
    ("gap", "intraday"),
    [(-0.25, -0.20), (-0.46, -0.05), (-0.10, -0.45), (-0.69, -0.15), (-0.0, -0.55), (-0.62, 0.0)],
)
def test_a_crash_with_a_crash_signature_is_not_called_a_split(gap: float, intraday: float) -> None:
    """A gap off every split ratio, or a day that keeps falling: a move (kept, maybe an outlier)."""
    df = crash_at(bars(seed=8), 260, gap, intraday, volume_spike=4.0)
    got, rep = check_frame("CRSH", df)
    assert got is not None and not [f for f in rep.findings if f.check in SPLIT_CHECKS]
    np.testing.assert_allclose(got["close"].to_numpy(), df["close"].to_numpy())  # nothing adjusted


# -- properties --------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    sigma=st.floats(0.005, 0.03),
    pq=st.sampled_from([*SPLITS, (8, 1), (1, 3), (1, 4), (6, 1), (15, 1), (1, 20)]),
    at=st.integers(5, 299),
    shape=st.sampled_from(["ohlcv", "ohlc", "close_only", "close_volume"]),
)
# Found by this property: a clean 8-for-1 whose volume came out x5.35 (a 3.4-sd draw) was read as a
# 7-for-1 with an -11% move of its own, leaving a jump; overruling a clean match now needs 99%.
@example(seed=1905, sigma=0.015625, pq=(8, 1), at=73, shape="ohlcv")
# Found by this property (r14b): a 2-for-1 5 bars in, close-only, too little history to know its moves.
@example(seed=343, sigma=0.0234375, pq=(2, 1), at=5, shape="close_only")
def test_property_a_split_is_adjusted_or_excluded_never_a_one_bar_jump(
    seed: int, sigma: float, pq: tuple[int, int], at: int, shape: str
) -> None:
    """Random series × random real ratio at a random day: whatever reaches analysis has no jump there.

    Reviewer round 3, kind 2: a close-only series without volume is checked whatever its volatility
    (here up to 3% a day, where a 5-for-4 is an ordinary-looking 20% day): a jump at a split ratio
    within tolerance is a suspected split, excluded when nothing confirms it.
    """
    factor = pq[0] / pq[1]
    truth = bars(seed, 300, sigma)
    # The split day itself is an ordinary day: its own overnight move within 2 sd.
    g = math.log(truth["open"].iloc[at] / truth["close"].iloc[at - 1])
    lim = 2 * sigma * (0.6 if shape.startswith("ohlc") else 1.0)
    if shape.startswith("close"):
        r = math.log(truth["close"].iloc[at] / truth["close"].iloc[at - 1])
        truth.iloc[at:, :4] *= math.exp(max(-lim, min(lim, r)) - r)
    else:
        truth.iloc[at:, :4] *= math.exp(max(-lim, min(lim, g)) - g)
    df = split_at(truth, at, factor)
    if shape in ("ohlc", "close_only"):
        df["volume"] = np.nan
    if shape.startswith("close"):
        df[["open", "high", "low"]] = np.nan
        df = df.assign(open=df["close"].shift(1).fillna(df["close"]))
        df["high"], df["low"] = df[["open", "close"]].max(axis=1), df[["open", "close"]].min(axis=1)
    got, rep = check_frame("SPLT", df)
    if got is None:
        assert any(f.severity == "error" for f in rep.findings)
        return
    c = got["close"].to_numpy()
    jump = abs(math.log(c[at] / c[at - 1]))
    assert jump < 0.1, ([f.line() for f in rep.findings], jump)
    assert any(f.check == "split" for f in rep.findings)


def _gap_day(truth: pd.DataFrame, at: int, gap: float) -> pd.DataFrame:
    """`truth` with the bar at `at` (and everything after) moved by `gap` (log) at the open."""
    out = truth.copy()
    out.iloc[at:, :4] *= math.exp(gap)
    return out


def _own_move_day(truth: pd.DataFrame, at: int, gap: float) -> pd.DataFrame:
    """`truth` whose overnight move into `at` is exactly `gap` (log): the bar's own gap replaced."""
    g = math.log(float(truth["open"].iloc[at]) / float(truth["close"].iloc[at - 1]))
    return _gap_day(truth, at, gap - g)


def _check_as_of(frame: pd.DataFrame) -> tuple[pd.DataFrame | None, list]:
    """`check_bars` as a traded symbol sees it (its last bar is the as-of date: an outlier there is an
    error), for one symbol's frame: (the repaired frame or None when excluded, the findings)."""
    fields = {k: frame[k].to_numpy(np.float64)[:, None] for k in ("open", "high", "low", "close", "volume")}
    res = check_bars(pd.DatetimeIndex(frame.index), ["SPLT"], fields)
    if not res.keep[0]:
        return None, list(res.report.findings)
    return pd.DataFrame({k: v[:, 0] for k, v in res.fields.items()}, index=frame.index), list(
        res.report.findings
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(seed=0, sigma=0.015625, vol_sd=0.0625, pq=(1, 5), gap=0.0, at=299)  # CI: 1-for-5 + noise > 5x
# A 3-for-2 on a +6% day 9 bars before the end (volume not readable yet) was kept as a -30% day.
@example(seed=0, sigma=0.015625, vol_sd=0.0625, pq=(3, 2), gap=0.0625, at=291)
# Session 6: a 4-for-3 on a +6% day moves prices like a clean 5-for-4, and volume (x1.27, 1.6 noise sd
# from either) was read as a 5-for-4; now volume must rule out every other ratio (rule 5 of splits).
@example(seed=2133, sigma=0.005, vol_sd=0.0625, pq=(4, 3), gap=0.06, at=30)
@example(seed=2133, sigma=0.02, vol_sd=0.1, pq=(3, 2), gap=0.1, at=290)
@example(seed=2133, sigma=0.01, vol_sd=0.1, pq=(4, 3), gap=-0.03, at=30)
# A 5-for-4 with a +10% day on the last bar: a -12% move nothing can confirm yet, never kept.
@example(seed=2133, sigma=0.01, vol_sd=0.03, pq=(5, 4), gap=0.1, at=299)
@given(
    seed=st.integers(0, 10_000),
    sigma=st.floats(0.005, 0.02),
    vol_sd=st.floats(0.03, 0.10),
    pq=st.sampled_from([*SPLITS, (8, 1), (1, 3), (1, 4), (6, 1), (15, 1), (1, 20)]),
    gap=st.floats(-0.10, 0.10),
    at=st.integers(30, 299),
)
def test_property_a_split_on_a_day_the_stock_also_moves_is_adjusted_by_its_ratio_or_excluded(
    seed: int, sigma: float, vol_sd: float, pq: tuple[int, int], gap: float, at: int
) -> None:
    """Reviewer round 3, kind 1: random series × random real ratio × a same-day move in [-10%, +10%].

    The symbol is excluded (unconfirmed split, or an outlier on the as-of bar), or adjusted by exactly
    the true ratio so the adjusted history is continuous: the split day shows the stock's own move,
    never the split. Never a 9-for-4 or a 4-for-3 for a 5-for-4. (With volume: without it a split offset
    by its day's move looks like an ordinary day - the documented limit in `joe.data.splits`.) The
    split day's own overnight move is exactly `gap` (the detector's contract is a move within ±12%,
    `GAP_MAX`; the bar's natural gap on top of a -10% day went beyond it).
    """
    factor = pq[0] / pq[1]
    truth = _own_move_day(bars(seed, 300, sigma, vol_sd=vol_sd), at, math.log1p(gap))
    split = split_at(truth, at, factor)
    got, findings = _check_as_of(split)
    found = [f for f in findings if f.check in SPLIT_CHECKS]
    if got is None:
        errors = [f.check for f in findings if f.severity == "error"]
        if at == 299 and errors == ["last_bar_outlier"]:
            return  # a split on the as-of bar itself: nothing can confirm it yet, it is not traded
        # r14b: beyond 5x in the last 9 bars (no volume evidence yet) it is named an extreme move. The
        # observed one-bar move, not the ratio: a 1-for-5 plus the day's own noise can be beyond 5x.
        moved = abs(math.log(float(split["close"].iloc[at]) / float(split["close"].iloc[at - 1])))
        recent_big = at >= 300 - 9 and moved > math.log(5)
        assert errors == ["unconfirmed_split"] or (recent_big and errors == ["extreme_move"]), found
        return
    assert [f.date for f in found if f.check == "split"] == [truth.index[at].date().isoformat()], found
    np.testing.assert_allclose(got["close"].to_numpy(), truth["close"].to_numpy() / factor, rtol=1e-9)


@pytest.mark.parametrize(
    ("p", "q", "extra"), [(2, 1, 1.08), (2, 1, 1.06), (2, 1, 0.94), (2, 1, 0.90), (3, 1, 0.92)]
)
def test_the_reviewers_split_days_with_a_move_are_adjusted_by_the_real_ratio(
    p: int, q: int, extra: float
) -> None:
    """A 2-for-1 on a day the stock also moved +8% was 'an outlier' (and shorted): now a 2-for-1 split."""
    for seed in range(4):
        truth = _gap_day(bars(seed=200 + seed, vol_sd=0.06), 250, math.log(extra))
        got, rep = check_frame("SPLT", split_at(truth, 250, p / q))
        assert got is not None, [f.line() for f in rep.findings]
        (f,) = [f for f in rep.findings if f.check in SPLIT_CHECKS]
        assert f.check == "split" and f"{p}-for-{q} split and a" in f.message
        assert not [f for f in rep.findings if f.check == "outlier"]
        np.testing.assert_allclose(got["close"].to_numpy(), truth["close"].to_numpy() / (p / q), rtol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_a_5_for_4_on_a_minus_6_5_percent_day_is_adjusted_as_volume_says(seed: int) -> None:
    """The jump is a clean 4-for-3; a 5-for-4 with a -6.5% day makes it too. Adjusted 5-for-4 or excluded;
    4-for-3 only when the volume itself came out closer to ×4/3 than to ×5/4 (the noise of two medians)."""
    truth = _gap_day(bars(seed=300 + seed, vol_sd=0.06), 250, math.log(0.935))
    got, rep = check_frame("SPLT", split_at(truth, 250, 1.25))
    (f,) = [f for f in rep.findings if f.check in SPLIT_CHECKS]
    if f.check == "unconfirmed_split":
        assert got is None and "5-for-4" in f.message
        return
    vr = float(re.search(r"volume ×([0-9.]+)", f.message).group(1))  # type: ignore[union-attr]
    if "4-for-3" in f.message:
        assert abs(math.log(vr * 3 / 4)) < abs(math.log(vr / 1.25))
    else:
        assert "5-for-4" in f.message
        np.testing.assert_allclose(got["close"].to_numpy(), truth["close"].to_numpy() / 1.25, rtol=1e-9)


@pytest.mark.parametrize(("p", "q"), [(7, 4), (9, 4), (7, 3)])
def test_an_invented_ratio_is_never_used_to_adjust(p: int, q: int) -> None:
    """Volume scaled by 7/4 and prices by 4/7: no real split says so; excluded, never adjusted by 7-for-4."""
    got, rep = check_frame("SPLT", split_at(bars(seed=5, vol_sd=0.03), 250, p / q))
    assert got is None
    (f,) = [f for f in rep.findings if f.severity == "error"]
    assert f.check == "unconfirmed_split"
    assert not [f for f in rep.findings if f.check == "split"]


def _holes(lo: float = 0.22, hi: float = 1.6, margin: float = 0.05) -> list[tuple[float, float]]:
    """Log-move intervals at least `margin` away from every split ratio."""
    logs = sorted(math.log(float(r)) for r in RATIOS)
    edges = [lo - margin, *[x for x in logs if lo - margin < x < hi + margin], hi + margin]
    return [(a + margin, b - margin) for a, b in itertools.pairwise(edges) if b - a > 2 * margin]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    move=st.sampled_from(_holes()).flatmap(lambda h: st.floats(h[0], h[1])),
    share_overnight=st.floats(0.0, 1.0),
    at=st.integers(30, 295),
    spike=st.floats(1.5, 8.0),
)
def test_property_a_crash_off_the_split_ratios_is_never_called_a_split(
    seed: int, move: float, share_overnight: float, at: int, spike: float
) -> None:
    """A crash of split size whose overnight gap matches no split ratio (or that falls through the day)."""
    gap = -move * share_overnight
    if not _far_from_ratios(gap, 0.04):
        gap, intraday = -move * 0.3, -move * 0.7  # a ratio-sized gap only with a falling day
    else:
        intraday = -move - gap
    df = crash_at(bars(seed), at, gap, intraday, spike)
    _, rep = check_frame("CRSH", df)
    found = [f for f in rep.findings if f.check in SPLIT_CHECKS]
    # Round 3: a gap a real ratio explains with a same-day move within ±12%, on an ordinary day, is a
    # split when volume moved by the ratio for weeks (here: by chance, the documented limit of
    # `joe.data.splits`), excluded when volume cannot tell; anything else is a move, never a split.
    split_like = intraday == -move - gap and any(abs(math.log(float(r)) + gap) <= GAP_MAX for r in RATIOS)
    # In the last 9 bars volume says nothing yet: a jump of ×1.5 or more is excluded until it does (never
    # adjusted as a split), the documented limit (found by this property: seed 0, a ×3.5 gap 8 bars in).
    too_recent = len(df) - 1 - at < SPIKE_BARS + MIN_AFTER_BARS - 1 and abs(gap) >= BIG_WITHOUT_VOLUME
    if too_recent and not split_like:
        assert not [f for f in found if f.check == "split"], [f.line() for f in found]
        return
    assert not found or split_like, [f.line() for f in found]


# -- end to end: joe run --once --source csv:DIR -------------------------------------------------------


def _trend(seed: int, drift: float, price: float, n: int = 400) -> pd.DataFrame:
    df = ohlcv(n, seed=seed, price=price)
    k = np.exp(np.arange(n) * drift)
    df[["open", "high", "low", "close"]] = df[["open", "high", "low", "close"]].mul(k, axis=0)
    return df


@pytest.mark.parametrize(
    ("factor", "volume", "extra"),
    [
        *[(1.5, True, 1.0), (1.25, True, 1.0), (4 / 3, True, 1.0), (2.0, False, 1.0), (2.0, True, 1.08)],
        *[(2.0, True, 0.94), (2.0, False, 1.08), (3.0, True, 0.92), (1.25, True, 1.10)],
    ],
)
def test_run_once_never_shorts_a_split(
    project: Path, tmp_path: Path, factor: float, volume: bool, extra: float
) -> None:
    """The reviewers' cases end to end: 3-for-2 and 5-for-4 were SHORTED; a 2:1 without volume too; and
    (round 3) a 2-for-1 on a day the stock also moved +8% / -6% was an outlier and SHORTED."""
    folder = tmp_path / "prices"
    folder.mkdir()
    write_csv(folder, "SPX", _trend(1, 0.0008, 3000))
    for i in range(8):
        write_csv(folder, f"S{i}", _trend(10 + i, 0.0005, 50))
    trend = _trend(99, 0.002, 200)
    trend.iloc[370:, :4] *= extra
    split = split_at(trend, 370, factor)
    write_csv(folder, "SPLT", split if volume else split.drop(columns="volume"))
    result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}"])
    assert result.exit_code == 0, result.output
    (run_json,) = (project / "data").rglob("run.json")
    doc = json.loads(run_json.read_text())
    assert not [s for s in doc["signals"] if s["symbol"] == "SPLT" and s["direction"] == "SHORT"]
    found = {(f["check"], f["severity"]) for f in doc["data_quality"]["findings"] if f["symbol"] == "SPLT"}
    # With volume: adjusted, or excluded when volume cannot tell 5-for-4 from 4-for-3 - never shorted.
    assert found & (
        {("split", "warning"), ("unconfirmed_split", "error")} if volume else {("unconfirmed_split", "error")}
    )


@pytest.mark.parametrize(("p", "q"), [(5, 4), (4, 3), (3, 2)])
def test_a_volatile_close_only_series_with_a_small_split_is_kept_out(tmp_path: Path, p: int, q: int) -> None:
    """Round 3, kind 2: 3% a day, close-only, no volume: a 5-for-4 (a 20% 'day') was shorted with no
    finding. A jump at a split ratio within tolerance is a suspected split whatever the volatility."""
    at = 250
    for seed in range(4):
        truth = bars(seed=40 + seed, sigma=0.03)
        day_move = math.log(truth["close"].iloc[at] / truth["close"].iloc[at - 1])
        truth.iloc[at:, :4] *= math.exp(max(-0.04, min(0.04, day_move)) - day_move)  # within tolerance
        write_csv(tmp_path, "CO", close_only(split_at(truth, at, p / q)))
        write_csv(tmp_path, "OK", bars(seed=99))
        snap = snapshot(tmp_path)
        assert snap.quality.excluded == ["CO"]
        (f,) = [f for f in snap.quality.for_symbol("CO") if f.severity == "error"]
        assert (f.check, f.file, f.row) == ("unconfirmed_split", "CO.csv", at + 2)
        assert f"{p}-for-{q}" in f.message and "no volume" in f.message


@pytest.mark.parametrize(
    ("p", "q", "gap", "rival"), [(4, 3, 0.06, "5-for-4"), (5, 4, -0.06, "4-for-3"), (3, 2, 0.1, "4-for-3")]
)
def test_two_ratios_volume_cannot_tell_apart_exclude_the_symbol_naming_both(
    p: int, q: int, gap: float, rival: str
) -> None:
    """Session 6 (rule 5 of `joe.data.splits`): a 4-for-3 on a +6% day moves prices exactly like a
    clean 5-for-4; with volume as noisy as a real stock's it was adjusted by whichever ratio volume
    leaned to. Neither is ruled out by volume: excluded, both ratios named, splits.csv offered."""
    for seed in range(3):
        truth = _own_move_day(bars(seed=700 + seed, vol_sd=0.3), 250, math.log1p(gap))
        got, rep = check_frame("SPLT", split_at(truth, 250, p / q))
        assert got is None, [f.line() for f in rep.findings]
        (f,) = [f for f in rep.findings if f.severity == "error"]
        assert f.check == "unconfirmed_split" and rival in f.message and f"{p}-for-{q}" in f.message
        assert "splits.csv" in f.message
