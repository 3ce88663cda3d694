"""Telling a stock split from a crash in one symbol's bars (used by `joe.data.quality`).

A p-for-q split divides every later price by p/q and multiplies volume by p/q. In the bars it shows
as a jump with three signatures a crash does not have all of:

1. **The ratio.** The overnight move (previous close → this open; close → close for close-only bars,
   which have no open of their own) is within tolerance of a split ratio: p/q or q/p with p <= 10,
   q <= 4 and at least 1.25 (5-for-4 ... 10-for-1, 3-for-2, 4-for-3, 5-for-2 and the reverse splits
   1-for-2, 2-for-3, 1-for-10 ...). The tolerance is 4 robust standard deviations (1.4826 × MAD) of
   the symbol's own overnight moves over the 60 bars before, clipped to [2%, 3.5%] (3.5% with fewer
   than 20 bars before): a split day's gap is the ratio plus an ordinary gap.
2. **A normal day.** The jump happened between the bars, not during one: the bar's own high-low range
   is within 4× its usual (median of the 60 bars before) plus 5%. A crash that keeps falling through
   the day fails this and is a move, not a split. (Close-only bars carry no range: not checked.)
3. **Volume scaled the other way.** When the series has volume, the median volume of the 10 bars from
   the jump on over the 10 bars before is closer (in log terms) to the ratio than to 1, and within 2×.

A jump with 1 and 2 is a *suspected* split. It is adjusted (earlier prices ÷ ratio, volume × ratio,
a warning) when volume confirms it (3) or the user confirmed it (a ``splits.csv`` beside the files).
Any other suspected split excludes the symbol with an error saying how to fix the file: Joe never
trades a suspected split it has not adjusted, because reading it as a crash would put an entry on the
wrong side. Close-only series (only closes: no gap, no range) are the exception for small ratios
(below 1.9x): there a 5-for-4 cannot be told from a 20% day, so it is suspected only when the move
is at least 12 robust standard deviations of the symbol's daily moves (a 20% day is then
extraordinary) or volume confirms it; a volatile close-only series' 20% day is a move (an outlier
warning). (Volume cannot *refute* a small split: ten days' median volume is too noisy to tell ×1.25
from ×1. A genuine big move with a split-like gap on an ordinary day is excluded too - fail closed;
a crash usually trades through the day, which rule 2 sees.)

The splits file: ``splits.csv`` in the data folder, columns ``symbol,date[,ratio]`` (ISO date, ratio
like ``4:1``, ``3-for-2`` or ``1:10``); a listed split within 4 days (and the same ratio, when given)
of a suspected one confirms it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from joe.data.errors import DataError

MIN_RATIO = 1.25
MAX_NUMERATOR = 10
MAX_DENOMINATOR = 4
PRIOR_BARS = 60
VOLUME_BARS = 10
TOL_SDS = 4.0
TOL_MIN = 0.02
TOL_MAX = 0.035
MIN_PRIOR_FOR_SD = 20
# Close-only series carry no gap and no range: a small split (below 1.9x) is only told from a big day
# when the move is extraordinary for the symbol (>= 12 robust sd of its daily moves) or volume confirms.
SMALL_BELOW = 1.9
CLOSE_ONLY_MIN_SDS = 12.0
RANGE_TIMES = 4.0
RANGE_EXTRA = 0.05
VOLUME_MAX_FACTOR = 2.0
# How far (in sessions) a splits.csv date may be from the jump (vendors date a split on the ex-date
# or the day before).
CONFIRM_WINDOW_DAYS = 4


def split_ratios(
    max_numerator: int = MAX_NUMERATOR, max_denominator: int = MAX_DENOMINATOR, min_ratio: float = MIN_RATIO
) -> tuple[Fraction, ...]:
    """Split price factors p/q > 1 (a forward split; a reverse split is the inverse), ascending."""
    out = {
        Fraction(p, q)
        for q in range(1, max_denominator + 1)
        for p in range(q + 1, max_numerator + 1)
        if Fraction(p, q) >= Fraction(min_ratio).limit_denominator(1000)
    }
    return tuple(sorted(out))


RATIOS = split_ratios()
_LOG_RATIOS = np.log(np.array([float(r) for r in RATIOS]))


def split_label(ratio: float) -> str:
    """`3-for-2` for a price factor of 1.5 (prices fall), `1-for-10` for 0.1 (a reverse split)."""
    fr = Fraction(ratio).limit_denominator(MAX_NUMERATOR)
    return f"{fr.numerator}-for-{fr.denominator}"


def nearest_ratio(log_move: float) -> tuple[float, float]:
    """(signed split factor closest to exp(log_move), |log distance| to it). Factor > 1: prices fell."""
    k = int(np.argmin(np.abs(_LOG_RATIOS - abs(log_move))))
    dist = abs(abs(log_move) - float(_LOG_RATIOS[k]))
    factor = float(RATIOS[k])
    return (factor if log_move > 0 else 1 / factor), dist


def robust_sd(x: np.ndarray) -> float:
    """1.4826 × median absolute deviation of the finite values (NaN when fewer than 5)."""
    x = x[np.isfinite(x)]
    if x.size < 5:
        return math.nan
    return float(np.median(np.abs(x - np.median(x))) * 1.4826)


@dataclass(frozen=True)
class Jump:
    """What the bars say about the jump into bar `t` (row indices into the symbol's arrays)."""

    t: int
    prev: int
    factor: float  # signed split factor: previous close / this bar, > 1 when prices fell
    ratio_match: bool
    normal_day: bool
    close_only: bool
    volume_ratio: float  # NaN when the series has no volume around the jump
    tolerance: float
    distance: float
    sds: float  # the move in robust standard deviations of the symbol's usual moves (NaN: unknown)

    @property
    def suspected(self) -> bool:
        """A split-like jump (rules 1 and 2; for close-only series see `CLOSE_ONLY_MIN_SDS`)."""
        if not (self.ratio_match and self.normal_day):
            return False
        small = abs(math.log(self.factor)) < math.log(SMALL_BELOW)
        ordinary = self.close_only and small and self.sds < CLOSE_ONLY_MIN_SDS  # NaN: unknown, suspect
        return not ordinary or self.volume_confirms

    @property
    def volume_confirms(self) -> bool:
        vr = self.volume_ratio
        if not (math.isfinite(vr) and vr > 0):
            return False
        lf, lv = math.log(self.factor), math.log(vr)
        return abs(lv - lf) < abs(lv) and abs(lv - lf) <= math.log(VOLUME_MAX_FACTOR)

    @property
    def label(self) -> str:
        return split_label(self.factor)


def _median_positive(v: np.ndarray) -> float:
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.median(v)) if v.size else math.nan


def assess_jump(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray, rows: np.ndarray, pos: int
) -> Jump:
    """Assess the jump into the bar at `rows[pos]` from `rows[pos - 1]` (one symbol's 1-D arrays).

    `rows` are the symbol's valid rows (ascending); `pos >= 1`. See the module docstring for the rule.
    """
    t, p = int(rows[pos]), int(rows[pos - 1])
    close_only = bool(np.isclose(o[t], c[p], rtol=1e-9, atol=0.0))
    prior = rows[max(0, pos - PRIOR_BARS) : pos]  # bars up to and including the previous one
    pc = c[prior]
    if close_only:
        move = math.log(c[p] / c[t])
        hist = np.diff(np.log(pc))
    else:
        move = math.log(c[p] / o[t])
        hist = np.log(pc[:-1] / o[prior[1:]]) if prior.size > 1 else np.array([])
    sd = robust_sd(hist)
    # Fewer than 20 bars before: no trustworthy estimate of the usual gap, take the widest tolerance.
    few = hist.size < MIN_PRIOR_FOR_SD or not math.isfinite(sd)
    tol = TOL_MAX if few else min(TOL_MAX, max(TOL_MIN, TOL_SDS * sd))
    factor, dist = nearest_ratio(move)
    normal = True
    if not close_only:
        ranges = np.log(h[prior] / low[prior])
        usual = float(np.median(ranges[np.isfinite(ranges)])) if np.isfinite(ranges).any() else 0.0
        normal = bool(math.log(h[t] / low[t]) <= RANGE_TIMES * usual + RANGE_EXTRA)
    before = _median_positive(v[rows[max(0, pos - VOLUME_BARS) : pos]])
    after = _median_positive(v[rows[pos : pos + VOLUME_BARS]])
    vr = after / before if before > 0 and math.isfinite(after) else math.nan
    sds = abs(move) / sd if math.isfinite(sd) and sd > 0 else math.nan
    return Jump(t, p, factor, dist <= tol, normal, close_only, vr, tol, dist, sds)


SPLITS_FILE = "splits.csv"
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-?\s*for\s*-?|:|/)\s*(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class UserSplit:
    """A split the user confirmed in `SPLITS_FILE`: its date and price factor (None: any ratio)."""

    day: date
    factor: float | None
    source: str  # "splits.csv row 3", for the finding

    def matches(self, day: date, factor: float) -> bool:
        """Within `CONFIRM_WINDOW_DAYS` of the jump, and the same ratio (2%) when one was given."""
        close_in_time = abs((self.day - day).days) <= CONFIRM_WINDOW_DAYS
        return close_in_time and (self.factor is None or abs(math.log(self.factor / factor)) <= 0.02)


def parse_ratio(text: str) -> float:
    """`3:2`, `3-for-2`, `3 for 2`, `3/2` or `1.5` as a price factor (1.5); `1:10` is 0.1. ValueError."""
    m = _RATIO.match(text)
    value = float(m.group(1)) / float(m.group(2)) if m else float(text)
    if not (math.isfinite(value) and value > 0 and value != 1):
        raise ValueError(text)
    return value


def read_splits_file(path: Path) -> dict[str, list[UserSplit]]:
    """Read `SPLITS_FILE`: columns symbol, date (ISO) and optionally ratio (`3:2`, `1-for-10`...).

    Raises `DataError` naming the file, the row and what to write.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path.name}: cannot be read as CSV ({type(exc).__name__}: {exc})") from exc
    cols = {str(c).strip().lower(): c for c in df.columns}
    if "symbol" not in cols or "date" not in cols:
        raise DataError(
            f"{path.name}: needs the columns symbol,date[,ratio] (found {', '.join(map(str, df.columns))}); "
            f"e.g. a line 'AAPL,2020-08-31,4:1'"
        )
    out: dict[str, list[UserSplit]] = {}
    for i, row in enumerate(df.itertuples(index=False), start=2):
        rec = dict(zip(df.columns, row, strict=True))
        sym = str(rec[cols["symbol"]]).strip()
        raw_date = str(rec[cols["date"]]).strip()
        raw_ratio = str(rec[cols["ratio"]]).strip() if "ratio" in cols else ""
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            raise DataError(
                f"{path.name}: row {i}: date {raw_date!r} is not an ISO date like 2020-08-31"
            ) from None
        try:
            factor = parse_ratio(raw_ratio) if raw_ratio else None
        except ValueError:
            raise DataError(
                f"{path.name}: row {i}: ratio {raw_ratio!r} is not a split ratio; write it like 4:1, 3-for-2 "
                f"or 1:10 (a reverse split)"
            ) from None
        if not sym:
            raise DataError(f"{path.name}: row {i}: empty symbol")
        out.setdefault(sym, []).append(UserSplit(day, factor, f"{path.name} row {i}"))
    return out
