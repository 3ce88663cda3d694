"""The data-quality stage: every source's bars pass through `check_bars` before analysis sees them.

Input: aligned 2-D arrays (dates × symbols) of open/high/low/close/volume, NaN where a symbol has no
bar. Output: the arrays with repairs applied, which symbols to keep, and per-symbol `Finding`s.
An **error** excludes the symbol from the run; a **warning** keeps it, flagged in the report.

Checks (thresholds in `QualityConfig`; the README's data section lists them for users). A move between
two bars is judged by the sessions between them (`joe.data.bar_spans`: the exchange's sessions for
daily bars, weekdays without a calendar, 1 for intraday bars): across k sessions the symbol's usual move
is √k times one session's (a random walk), so a move across a gap in the data (a market-wide gap in the
file, a halt) is read as the multi-session move it is - in the split rule (`joe.data.splits`, "Across a
gap"), the bad-tick and ``outlier`` checks below and the open's leg of a bar outlier (`joe.data.wicks`).
The ×5 ``extreme_move`` limit is absolute (bad ticks, wrong units) and is not scaled.

* ``non_finite`` (error): an infinite price or volume, or a bar with some prices and not others.
* ``ohlc`` (warning): open or close outside high/low; the range is widened to contain them.
* ``split`` (warning): a jump between two bars that a real split ratio explains (5-for-4 ... 50-for-1
  and the reverse 1-for-2 ... 1-for-100), with the split day's own move within ±12%, on an otherwise
  ordinary day, the ratio picked by volume (scaled the other way for good) or listed in ``splits.csv``
  beside the files: earlier bars are adjusted (prices ÷ ratio, volume × ratio). The rule and its
  tolerances are in `joe.data.splits`.
* ``unconfirmed_split`` (error): a split-like jump nothing confirms (no volume, or volume that cannot
  tell the ratio or split from none). Joe cannot tell it from a crash and will not trade an unadjusted
  split as one: the symbol is excluded, and the message says how to adjust the file or confirm it.
* ``extreme_move`` (error): a one-bar move beyond 5x either way that is not a split (bad tick, wrong
  units, a missing split adjustment), or a one-bar excursion undone the next bar that is beyond
  ``outlier_k`` robust sd of the symbol's moves (a bad tick).
* ``bar_outlier`` (warning) / ``extreme_move`` (error beyond 5x) / ``last_bar_outlier`` (error, on the
  as-of bar): an open, high or low far outside the rest of its bar (`joe.data.wicks`).
* ``last_bar_outlier`` (error): an ``outlier`` on the as-of bar of a traded symbol: nothing confirms it
  yet and every signal would be read from it (regime inputs keep it as a warning).
* ``volume_missing`` (error on the last bar, else warning): NaN or zero volume in a series with volume.
* ``behind`` (warning): the last bar is 1-3 sessions before the as-of date: not scored this run.
  Sessions are the symbol's exchange's (`calendars`, `joe.data.calendars`): a holiday is no missed
  session. Without a calendar (FX, crypto, or none given) the panel's dates count.
* ``no_session`` (warning): no bar on the as-of date because the symbol's exchange had no session
  then (a holiday there while other markets traded): not scored this run, nothing to fix.
* ``missing_sessions`` (warning): sessions of the symbol's exchange between its first and last bar
  without a bar (daily data; holidays and weekends are not missing): the rows are named.
* ``outlier`` (warning): |log return − median| > k × 1.4826 × MAD of the symbol's log returns
  (k = 10) and the move is at least 10%: a robust z-score far beyond normal for that symbol (per
  session: a return across s sessions against s × the median and √s × the MAD).
* ``close_only`` (warning): bars carry no intrabar information (open = previous close with high/low =
  max/min(open, close), or open = high = low = close). Range and gap risk are then estimated from
  close-to-close volatility (`joe.analysis.features`).
* ``thin_history`` (warning): fewer than `min_scored_bars` (50) bars: never scored yet, said so.
* ``volume_unknown`` (warning): no volume at all, or a volume zero/empty on at least half the bars
  (read as none: set to NaN); the volume score is left out, never "neutral 50".
* ``stale`` (error): the last bar is more than 3 sessions before the as-of date; the symbol is
  excluded (scans need a bar on the as-of date; a stale series must not silently change decisions).
  Series older still never reach this stage: `joe.data.coverage` names them.

Every finding names the symbol and, where the source knows it (files), the file and 1-based line.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from joe.data import splits
from joe.data.bar_spans import bar_spans, panel_days, session_codes
from joe.data.calendars import holiday_name, in_sorted, sessions_after, sessions_between
from joe.data.findings import FIELDS, PRICES, Finding, Locator, QualityConfig, QualityReport, QualityResult
from joe.data.splits import SPLITS_FILE, UserSplit
from joe.data.volume_checks import volume_gaps, zero_volume
from joe.data.wicks import check_wicks

# The stage's vocabulary (`joe.data.findings`) is re-exported for its callers.
__all__ = [
    "Finding", "QualityConfig", "QualityReport", "check_bars", "check_frame", "log_returns", "prev_valid",
]  # fmt: skip


def _ffill_index(valid: np.ndarray) -> np.ndarray:
    """Per column, the row index of the last valid row at or before each row (-1 when none)."""
    n = valid.shape[0]
    idx = np.where(valid, np.arange(n)[:, None], -1)
    return np.maximum.accumulate(idx, axis=0)


def prev_valid(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per column, the value at the previous valid row (strictly before), NaN when none."""
    last = _ffill_index(valid)
    prev = np.full_like(last, -1)
    prev[1:] = last[:-1]
    cols = np.broadcast_to(np.arange(x.shape[1]), x.shape)
    return np.where(prev >= 0, x[np.maximum(prev, 0), cols], np.nan)


def log_returns(close: np.ndarray) -> np.ndarray:
    """Log return of each valid bar against the symbol's previous valid bar (NaN elsewhere)."""
    valid = np.isfinite(close) & (close > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(valid, np.log(close / prev_valid(close, valid)), np.nan)


class _Collector:
    def __init__(self, dates: pd.DatetimeIndex, symbols: Sequence[str], locate: Locator | None) -> None:
        self.dates, self.symbols, self.locate = dates, symbols, locate
        self.findings: list[Finding] = []

    def add(self, j: int, severity: str, check: str, message: str, t: int | None = None) -> None:
        sym = self.symbols[j]
        file = row = date = None
        if t is not None:
            ts = self.dates[t]
            date = ts.date().isoformat()
            if self.locate is not None:
                file, row = self.locate(sym, ts)
        elif self.locate is not None:
            file, _ = self.locate(sym, self.dates[-1] if len(self.dates) else pd.Timestamp(0, tz="UTC"))
        self.findings.append(Finding(sym, severity, check, message, file, row, date))


def _rows_text(rows: np.ndarray, col: _Collector, j: int, limit: int) -> str:
    where = []
    for t in rows[:limit]:
        _, line = col.locate(col.symbols[j], col.dates[t]) if col.locate else (None, None)
        where.append(f"row {line}" if line is not None else col.dates[t].date().isoformat())
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(where) + more


def check_bars(
    dates: pd.DatetimeIndex,
    symbols: Sequence[str],
    fields: Mapping[str, np.ndarray],
    *,
    locate: Locator | None = None,
    config: QualityConfig | None = None,
    user_splits: Mapping[str, Sequence[UserSplit]] | None = None,
    check_stale: bool = True,
    no_splits: Collection[str] = (),
    calendars: Mapping[str, str | None] | None = None,
) -> QualityResult:
    """Check (and repair where safe) aligned bar arrays; see the module docstring for the rules.

    `fields` maps open/high/low/close/volume to float arrays of shape (len(dates), len(symbols)); the
    inputs are not modified. The last row is the as-of date. `user_splits` are splits the user
    confirmed (symbol -> `UserSplit`s, from ``splits.csv``). `check_stale` False for the regime's
    inputs, whose age `joe.data.regime_inputs` reports (a stale VIX lowers confidence, it is kept).
    `no_splits`: symbols that cannot split (indices, FX, crypto): their jumps are moves, never splits.
    `calendars`: symbol -> exchange calendar code (`joe.data.calendars.exchange_of`) whose sessions
    count a daily series' lag and missing bars; None or absent: the panel's dates count.
    """
    cfg = config or QualityConfig()
    arr = {k: np.array(fields[k], dtype=np.float64, order="F", copy=True) for k in FIELDS}
    n, m = arr["close"].shape
    col = _Collector(dates, symbols, locate)
    keep = np.ones(m, dtype=bool)
    adjusted: dict[str, list[tuple[int, float]]] = {}
    if n == 0 or m == 0:
        return QualityResult(arr, keep, QualityReport([], m))

    # -- non-finite values and partial bars (errors) ----------------------------------------------
    price_stack: np.ndarray = np.stack([arr[k] for k in PRICES])
    infinite = np.isinf(price_stack).any(axis=0) | np.isinf(arr["volume"])
    present = np.isfinite(price_stack)
    partial = present.any(axis=0) & ~present.all(axis=0)
    nonpos = np.asarray((np.where(present, price_stack, 1.0) <= 0).any(axis=0), dtype=bool)
    masks: tuple[tuple[np.ndarray, str], ...] = (
        (infinite, "an infinite value"),
        (partial, "some prices missing (a partial bar)"),
        (nonpos, "a zero or negative price"),
    )
    for mask, what in masks:
        for j in map(int, np.flatnonzero(mask.any(axis=0))):
            rows = np.flatnonzero(mask[:, j])
            keep[j] = False
            col.add(
                j,
                "error",
                "non_finite" if what != "a zero or negative price" else "non_positive",
                f"{len(rows)} bar(s) with {what} ({_rows_text(rows, col, j, cfg.max_rows_listed)}); "
                f"the symbol is excluded - fix or delete those rows",
                int(rows[0]),
            )
            for k in FIELDS:
                arr[k][:, j] = np.where(np.isfinite(arr[k][:, j]), arr[k][:, j], np.nan)
    ok_bar = np.isfinite(arr["close"]) & keep[None, :]
    # A volume column that is zero (or empty) on most bars is no volume - indices and FX from many
    # vendors write 0 -, not a known volume of 0: read as unknown (NaN), said below as `volume_unknown`.
    zeroed = zero_volume(arr["volume"], ok_bar)

    # -- open/close outside high/low: widen and flag ----------------------------------------------
    with np.errstate(invalid="ignore"):
        body_hi = np.fmax(arr["open"], arr["close"])
        body_lo = np.fmin(arr["open"], arr["close"])
        outside = ok_bar & ((arr["high"] < body_hi) | (arr["low"] > body_lo))
    for j in map(int, np.flatnonzero(outside.any(axis=0))):
        rows = np.flatnonzero(outside[:, j])
        col.add(
            j,
            "warning",
            "ohlc",
            f"{len(rows)} bar(s) with open/close outside high/low, range widened to contain them "
            f"({_rows_text(rows, col, j, cfg.max_rows_listed)})",
            int(rows[0]),
        )
    arr["high"] = np.where(outside, np.fmax(arr["high"], body_hi), arr["high"])
    arr["low"] = np.where(outside, np.fmin(arr["low"], body_lo), arr["low"])

    # -- splits, extreme moves and outliers -------------------------------------------------------
    # A move between two bars is judged by the sessions between them (`joe.data.bar_spans`): daily bars
    # count their exchange's sessions (weekdays without a calendar), intraday bars count 1.
    valid = np.isfinite(arr["close"])
    all_days = panel_days(dates, n > 2 and _daily(dates))
    codes = session_codes(all_days, symbols, valid, calendars)  # None: a weekday-calendar series
    span = bar_spans(all_days, valid, codes)
    # Regime inputs (check_stale False) are kept on a wild last bar: a VIX +100% day is the news.
    _moves(arr, keep, col, cfg, adjusted, user_splits or {}, set(no_splits), span, strict_last=check_stale)
    # Bad ticks inside a bar (an open, high or low no move of the symbol explains): `joe.data.wicks`.
    check_wicks(
        arr,
        keep,
        col.add,
        lambda rows, j: _rows_text(rows, col, j, cfg.max_rows_listed),
        cfg,
        strict_last=check_stale,
        span=span,
    )

    # -- close-only series, unknown volume, stale series ------------------------------------------
    prev_close = prev_valid(arr["close"], valid)
    vol_known = np.asarray((np.isfinite(arr["volume"]) & valid).any(axis=0), dtype=bool)
    with np.errstate(invalid="ignore"):
        from_closes = (
            np.isclose(arr["open"], prev_close, rtol=1e-9, atol=0.0)
            & np.isclose(arr["high"], np.fmax(arr["open"], arr["close"]), rtol=1e-12, atol=0.0)
            & np.isclose(arr["low"], np.fmin(arr["open"], arr["close"]), rtol=1e-12, atol=0.0)
        )
        flat = (arr["open"] == arr["close"]) & (arr["high"] == arr["close"]) & (arr["low"] == arr["close"])
    counted = valid.copy()
    counted[_first_valid_rows(valid), np.arange(m)] = False  # the first bar has no previous close
    n_valid = counted.sum(axis=0)
    share = np.where(n_valid > 0, ((from_closes | flat) & counted).sum(axis=0) / np.maximum(n_valid, 1), 0)
    last_row = np.where(valid.any(axis=0), n - 1 - np.argmax(valid[::-1], axis=0), -1)
    daily = calendars is not None and all_days is not None

    def rows_text(rows: np.ndarray, j: int) -> str:
        return _rows_text(rows, col, j, cfg.max_rows_listed)

    for j in range(m):
        if not keep[j] or last_row[j] < 0:
            continue
        close_only = n_valid[j] >= 2 and share[j] >= cfg.close_only_share
        if close_only:
            col.add(
                j,
                "warning",
                "close_only",
                "close-only series (no open/high/low of its own): gap risk and range are estimated "
                "from close-to-close volatility, not read from the bars",
            )
        if check_stale and n_valid[j] + 1 < cfg.min_scored_bars:
            col.add(
                j,
                "warning",
                "thin_history",
                f"only {n_valid[j] + 1} bar(s): not scored until it has {cfg.min_scored_bars} (the score's "
                f"{cfg.min_scored_bars}-bar average) - add earlier history to the file",
            )
        if not vol_known[j]:
            why = (
                f"volume zero or missing on {zeroed[j]} of {int(valid[:, j].sum())} bars: read as "
                if j in zeroed
                else ""
            )
            col.add(
                j,
                "warning",
                "volume_unknown",
                f"{why}no volume: the volume score is left out (not a neutral 50) and liquidity cannot be "
                f"checked",
            )
        if vol_known[j] and check_stale and symbols[j] not in no_splits:  # traded shares and funds
            volume_gaps(arr["volume"][:, j], valid[:, j], int(last_row[j]), j, col.add, rows_text, keep)
        lag = n - 1 - int(last_row[j])
        code = (calendars or {}).get(symbols[j]) if daily else None
        mine = all_days[valid[:, j]] if code is not None and all_days is not None else None
        if code is not None and check_stale:  # any daily series, weekday-calendar ones too
            _missing_sessions(code, mine, j, col, cfg)
        code = codes[j]  # None for a weekday-calendar series: its rows are its sessions
        if code is not None and check_stale:
            behind_rows, lag = lag, sessions_after(code, dates[last_row[j]].date(), dates[-1].date())
            if behind_rows and not lag:
                col.add(
                    j,
                    "warning",
                    "no_session",
                    f"no bar on the as-of date {dates[-1].date()}: {code} had no session then "
                    f"({holiday_name(code, dates[-1].date()) or 'a holiday or weekend'}) while other markets "
                    f"traded; not scored this run - nothing to fix",
                    int(last_row[j]),
                )
        if check_stale and 0 < lag <= cfg.stale_sessions:
            # Not stale enough to exclude, but a scan needs the as-of bar: say so instead of leaving the
            # symbol silently unscored while the run counts it as trading.
            col.add(
                j,
                "warning",
                "behind",
                f"{lag} session(s) behind: last bar {dates[last_row[j]].date()}, as-of date "
                f"{dates[-1].date()}; "
                f"not scored this run (signals need a bar on the as-of date) - update the file",
                int(last_row[j]),
            )
        if check_stale and lag > cfg.stale_sessions:
            keep[j] = False
            col.add(
                j,
                "error",
                "stale",
                f"stale {lag} sessions: last bar {dates[last_row[j]].date()} is {lag} sessions before the "
                f"as-of date {dates[-1].date()}; not scored - update the file or remove it",
                int(last_row[j]),
            )
    events = [(sym, dates[t].date().isoformat(), ratio) for sym, got in adjusted.items() for t, ratio in got]
    return QualityResult(arr, keep, QualityReport(col.findings, m, events), adjusted)


def _daily(dates: pd.DatetimeIndex) -> bool:
    """Daily bars: a median spacing from 20 hours to 4 days (weekends and holidays included)."""
    step = float(np.median(np.diff(dates.as_unit("ns").asi8)))  # in ns, whatever the index's unit
    return pd.Timedelta(hours=20).value <= step <= pd.Timedelta(days=4).value


def _missing_sessions(code: str, d: np.ndarray | None, j: int, col: _Collector, cfg: QualityConfig) -> None:
    """A `missing_sessions` warning for the sessions of `code` between a daily series' first and last
    bar (inside the calendar's range) that have no bar."""
    if d is None or len(d) < 2:
        return
    want = sessions_between(code, d[0], d[-1])
    gone = want[~in_sorted(want, d)]  # `d`: the series' days, sorted and unique
    if not gone.size:
        return
    listed = ", ".join(str(x) for x in gone[: cfg.max_rows_listed])
    more = f" and {gone.size - cfg.max_rows_listed} more" if gone.size > cfg.max_rows_listed else ""
    col.add(
        j,
        "warning",
        "missing_sessions",
        f"{gone.size} {code} session(s) without a bar between its first and last bar ({listed}{more}); "
        f"holidays and weekends are not counted - a gap in the file? Indicators read across it",
    )


def _may_hit(r: np.ndarray, cfg: QualityConfig) -> np.ndarray:
    """Per symbol (column of the dates × symbols log returns `r`): whether any return reaches
    `outlier_min_move`. One that does not has no outlier whatever its median and MAD, and its pass is
    skipped (most symbols: ~0.1 s CPU of a 500-symbol load). Test: tests/data/test_wicks_fast.py."""
    with np.errstate(invalid="ignore"):
        return np.asarray((np.abs(r) >= cfg.outlier_min_move).any(axis=0), dtype=bool)


def _robust_return_sd(rj: np.ndarray) -> float:
    """1.4826 × MAD of one symbol's finite log returns (at least 0.5%, a floor for flat series)."""
    sd = splits.robust_sd(rj)
    return max(sd, 0.005) if math.isfinite(sd) else 0.05


def _first_valid_rows(valid: np.ndarray) -> np.ndarray:
    return np.where(valid.any(axis=0), np.argmax(valid, axis=0), 0)


def _median_volume(v: np.ndarray, rows: np.ndarray) -> float:
    vals = v[rows]
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return float(np.median(vals)) if vals.size else math.nan


def _moves(
    arr: dict[str, np.ndarray],
    keep: np.ndarray,
    col: _Collector,
    cfg: QualityConfig,
    adjusted: dict[str, list[tuple[int, float]]],
    user_splits: Mapping[str, Sequence[UserSplit]],
    no_splits: set[str],
    span: np.ndarray,
    *,
    strict_last: bool = True,
) -> None:
    """Splits, extreme moves and close outliers (module docstring). `span`: dates × symbols, the
    sessions from each bar's previous bar (`joe.data.bar_spans`): a move across k sessions is judged
    against √k times the symbol's one-session move (a random walk; `joe.data.splits`)."""
    close, volume = arr["close"], arr["volume"]
    r = log_returns(close)
    r[:, ~keep] = np.nan
    root = np.sqrt(np.nan_to_num(span, nan=1.0))  # √sessions per bar (1: consecutive sessions)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(prev_valid(close, np.isfinite(close)) / arr["open"])
    floor = splits.FLOOR
    big_move = (np.abs(np.nan_to_num(r)) >= floor) | (np.abs(np.nan_to_num(gap)) >= floor)
    # Across a gap a split can show as a smaller jump (its own move is larger, `splits.Jump.floor`):
    # every bar after one is assessed as a split, and only as that.
    gap_only = (root > 1) & np.isfinite(r) & ~big_move
    candidates = np.argwhere((big_move | gap_only) & keep[None, :])
    extreme = math.log(cfg.extreme_ratio)
    skip: set[tuple[int, int]] = set()
    # Latest first: adjusting a split rescales only bars before it, which later jumps never look at.
    for t, j in sorted(((int(a), int(b)) for a, b in candidates), key=lambda x: (x[1], -x[0])):
        if not keep[j] or (t, j) in skip:
            continue
        valid_rows = np.flatnonzero(np.isfinite(close[:, j]))
        pos = int(np.searchsorted(valid_rows, t))
        if pos == 0:
            continue
        prev_t = int(valid_rows[pos - 1])
        before, after = float(close[prev_t, j]), float(close[t, j])
        # A jump undone by the next bar is a bad tick, not a split (checked from the latest bar back, so
        # the spike's own bar - not its reversal - is the one named).
        if pos >= 2 and not gap_only[t, j]:
            prev2 = float(close[int(valid_rows[pos - 2]), j])
            if abs(math.log(prev2 / after)) <= cfg.split_tolerance * 3 and abs(r[prev_t, j]) >= floor:
                skip.add((prev_t, j))
                # Judged per session: both legs of the excursion span at least this many (√sessions).
                legs = min(root[prev_t, j], root[t, j])
                t, after, before = prev_t, before, prev2
                # A one-bar excursion undone by the next bar that is an outlier for the symbol (or beyond
                # the extreme ratio) is a bad tick: it would feed ATR, volatility and any signal on it.
                z_tick = abs(math.log(after / before)) / (_robust_return_sd(r[:, j] / root[:, j]) * legs)
                if abs(math.log(after / before)) > extreme or z_tick > cfg.outlier_k:
                    keep[j] = False
                    col.add(
                        j,
                        "error",
                        "extreme_move",
                        f"close {after:.6g} after {before:.6g} (×{after / before:.4g} for one bar, undone "
                        f"the next bar: {z_tick:.0f} robust deviations) is a bad tick. The symbol is "
                        f"excluded - "
                        f"fix or delete that row",
                        int(t),
                    )
                continue
        o, h, lo, v = (arr[k][:, j] for k in ("open", "high", "low", "volume"))
        jump = splits.assess_jump(o, h, lo, close[:, j], v, valid_rows, pos, span[:, j])
        day = col.dates[t].date()
        users = [u for u in user_splits.get(col.symbols[j], ()) if u.matches(day, jump.move, jump.gap_max)]
        verdict = jump.verdict() if col.symbols[j] not in no_splits else splits.Verdict("move")
        if users and abs(jump.move) >= jump.floor:
            factor = users[0].factor or (verdict.factor if verdict.action != "move" else jump.factor)
            verdict = splits.Verdict("adjust", factor, f"confirmed in {users[0].source}")
        if verdict.action == "adjust":
            ratio = verdict.factor
            for name in PRICES:
                arr[name][:t, j] /= ratio
            volume[:t, j] *= ratio
            r[t, j] = np.nan  # the jump is explained; no outlier for it
            adjusted.setdefault(col.symbols[j], []).append((t, ratio))
            rest = math.log(ratio) - jump.move
            gap = f" and a {math.expm1(rest):+.1%} move of its own" if abs(rest) > jump.tolerance else ""
            col.add(
                j,
                "warning",
                "split",
                f"close {after:.6g} after {before:.6g} {verdict.why} looks like a "
                f"{splits.split_label(ratio)} split{gap}; earlier bars adjusted (prices ÷ {ratio:.4g}, "
                f"volume × {ratio:.4g})",
                int(t),
            )
            continue
        # Beyond the extreme ratio with volume that did not scale: a bad tick or wrong units, said so.
        # (also when the jump is too recent for volume to say anything: no split can be read into it)
        post = jump.posterior()
        too_far = abs(r[t, j]) > extreme and (
            post.get(1.0, 0.0) >= 0.5 or (not post and jump.has_volume and jump.bars_after < 9)
        )
        if verdict.action == "unconfirmed" and not too_far:
            keep[j] = False
            label = splits.split_label(verdict.factor)
            col.add(
                j,
                "error",
                "unconfirmed_split",
                f"close {after:.6g} after {before:.6g} is a {label} jump between two ordinary bars but "
                f"{verdict.why}: split or crash cannot be told apart, and an unadjusted split would be "
                f"traded as a crash. The symbol is excluded. Fix: supply split-adjusted prices (divide the "
                f"bars before {day} by the split ratio, {verdict.factor:.4g} for a {label}, multiply their "
                f"volume by it), or confirm the split with a line '{col.symbols[j]},{day},{label}' in "
                f"{SPLITS_FILE} beside the files",
                int(t),
            )
        elif abs(r[t, j]) > extreme:
            keep[j] = False
            col.add(
                j,
                "error",
                "extreme_move",
                f"close {after:.6g} after {before:.6g} (×{after / before:.4g} in one bar) is beyond "
                f"{cfg.extreme_ratio:g}x and not a split: bad tick or wrong units? The symbol is excluded",
                int(t),
            )
    # Robust outliers on what is left (after split adjustment).
    r = log_returns(close)
    may_hit = _may_hit(r, cfg)
    for j, _sym in enumerate(col.symbols):
        if not keep[j] or not may_hit[j]:
            continue
        rj, sj = r[:, j], span[:, j]
        fin = np.isfinite(rj)
        if fin.sum() < 20:
            continue
        for t, _ in adjusted.get(col.symbols[j], []):
            fin[t] = False
        # Per session: a return across k sessions is judged against k × the median and √k × the MAD.
        k = np.nan_to_num(sj, nan=1.0)
        vals = rj[fin] / root[fin, j]
        med = float(np.median(vals))
        mad = float(np.median(np.abs(vals - med))) * 1.4826
        if mad <= 0:
            continue
        z = np.abs(rj - k * med) / (root[:, j] * mad)
        hit = np.flatnonzero(fin & (z > cfg.outlier_k) & (np.abs(rj) >= cfg.outlier_min_move))
        last = int(np.flatnonzero(np.isfinite(close[:, j]))[-1])
        for t in map(int, hit):
            prev = math.exp(-rj[t]) * close[t, j]
            what = (
                f"close {close[t, j]:.6g} after {prev:.6g} ({math.expm1(rj[t]):+.1%}) is {z[t]:.0f} robust "
                f"deviations (MAD) from this symbol's usual move"
                + (f" over {k[t]:.0f} sessions" if k[t] > 1 else "")
            )
            if t == last and strict_last:
                # The decision bar itself: no later bar can show whether it was real, and every signal
                # of the run would be read from it. Excluded, never traded on.
                keep[j] = False
                col.add(
                    j,
                    "error",
                    "last_bar_outlier",
                    f"{what} on the last bar (the as-of date): no later bar confirms it, and a signal "
                    f"would be read from it. The symbol is excluded - check the bar (a real move is "
                    f"scored once the next bar confirms it)",
                    t,
                )
            else:
                col.add(j, "warning", "outlier", f"{what}; check the bar", t)


def check_frame(
    symbol: str,
    frame: pd.DataFrame,
    *,
    locate: Locator | None = None,
    config: QualityConfig | None = None,
    user_splits: Mapping[str, Sequence[UserSplit]] | None = None,
    can_split: bool = True,
) -> tuple[pd.DataFrame | None, QualityReport]:
    """`check_bars` for one regime input's frame (no stale check: `joe.data.regime_inputs` reports its
    age; `can_split` False for an index such as the VIX): (the repaired frame, or None when excluded;
    the report)."""
    fields = {k: frame[k].to_numpy(np.float64, na_value=np.nan)[:, None] for k in FIELDS}
    res = check_bars(
        pd.DatetimeIndex(frame.index),
        [symbol],
        fields,
        locate=locate,
        config=config,
        user_splits=user_splits,
        check_stale=False,
        no_splits=() if can_split else (symbol,),
    )
    if not res.keep[0]:
        return None, res.report
    out = pd.DataFrame({k: res.fields[k][:, 0] for k in FIELDS}, index=frame.index)
    return out, res.report
