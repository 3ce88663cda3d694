"""Bad ticks inside a bar: an open, high or low far beyond what the symbol's own moves allow.

The close-to-close checks (`joe.data.quality._moves`) never look inside a bar, yet the paper book runs
every bar's low and high through its stops and targets (a long is stopped on a bar's low, a gap "fills
at the open"), and ATR, range and gap risk read them. So for each bar of a series with intrabar data:

* the **excursion** is the largest of: the high above the body, log(high / max(open, close)); the low
  below it, log(min(open, close) / low); and an open away from *both* the previous close and its own
  close, min(|log(open / previous close)|, |log(open / close)|) (a gap that held is no excursion);
* **beyond the extreme ratio** (5×: a low of 0.01 under a close of 60, a high of 1e308): a bad tick or
  wrong units → ``extreme_move`` error naming the row; the symbol is excluded (fix or delete the row) and
  a held position is not settled on that bar (`joe.data.findings.BAR_REJECTS`);
* **beyond `outlier_k` robust sd of the symbol's close-to-close log returns (per session: across a gap
  in the data the open's leg from the previous close, and the returns, are ÷ √sessions, a random
  walk's scaling; `joe.data.bar_spans`), at least
  `outlier_min_move`, and beyond `TYPICAL_MULT` times the symbol's median excursion** (10 × 1.4826 × MAD,
  10%: the close outlier's rule; 5× the usual wick, so a symbol whose every bar spans a wide range around
  quiet closes — an illiquid name, a bond fund's intraday prints — is read by its own norm, not flagged on
  every bar): on the as-of bar of a traded
  symbol a ``last_bar_outlier`` error (nothing confirms it and the run would settle and score on it; the
  regime inputs keep it as a warning), on earlier bars a ``bar_outlier`` warning listing the rows.

Real extremes exist (AAPL's 2010-05-06 flash-crash low is 21% under its body, 9.9 robust sd; MSFT's
2008-07-01 low 15%, 11 sd in the sample data): they are warnings, never errors, unless on the as-of bar.
Close-only series (bars built from closes) have no excursions by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from joe.data import splits
from joe.data.findings import QualityConfig

__all__ = ["TYPICAL_MULT", "check_wicks", "excursions"]

# A bar's excursion must also exceed this many times the symbol's median excursion to be an outlier.
TYPICAL_MULT = 5.0


def excursions(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, span: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar (1-D arrays of one symbol, or dates × symbols arrays: each column a symbol; NaN where
    there is no bar): the excursion (log, >= 0; NaN without a full bar) and which part gives it (0 high,
    1 low, 2 open). Element-wise, so a column of a 2-D call equals the 1-D call on that column.
    `span` (same shape: sessions since the previous bar, `joe.data.bar_spans`): the open's distance from
    the previous close is read per session (÷ √sessions), as the move it is; None: as is."""
    if c.ndim == 1:
        sp = span[:, None] if span is not None else None
        e, which = excursions(o[:, None], h[:, None], lo[:, None], c[:, None], sp)
        return e[:, 0], which[:, 0]
    finite = np.isfinite(c)
    rows = np.arange(c.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(finite, rows, -1), axis=0)  # last bar with a close <= t
    before = np.full_like(last, -1)  # ... < t: the previous close's row
    before[1:] = last[:-1]
    prev = np.take_along_axis(c, np.maximum(before, 0), axis=0)
    prev = np.where(finite & (before >= 0), prev, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        from_prev = np.abs(np.log(o / prev))
        if span is not None:
            from_prev = from_prev / np.sqrt(np.fmax(span, 1.0))
        parts = (
            np.log(h / np.fmax(o, c)),
            np.log(np.fmin(o, c) / lo),
            np.fmin(from_prev, np.abs(np.log(o / c))),
        )
    # Each part >= 0 where finite, -1 where not; the largest and the first part that gives it (as
    # `argmax` over the three stacked), element-wise: no (3, dates, symbols) stack, no NaN-aware pass.
    ok = [np.isfinite(p) for p in parts]
    q0, q1, q2 = (np.where(f, np.maximum(p, 0.0), -1.0) for p, f in zip(parts, ok, strict=True))
    later = np.maximum(q1, q2)
    best = np.maximum(q0, later)
    which = np.where(q0 >= later, 0, np.where(q1 >= q2, 1, 2))
    full = ok[0] & ok[1]
    return np.where(full & (best >= 0), best, np.nan), which


def _scale(c: np.ndarray, span: np.ndarray | None = None) -> float:
    """1.4826 × MAD of the symbol's close-to-close log returns, at least 0.5% (as the close outlier's);
    per session with `span` (sessions since the previous bar: a return across k is ÷ √k)."""
    fin = np.isfinite(c)
    x = c[fin]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.diff(np.log(x))
        if span is not None:
            r = r / np.sqrt(np.fmax(span[fin][1:], 1.0))
    sd = splits.robust_sd(r[np.isfinite(r)]) if r.size else math.nan
    return max(sd, 0.005) if math.isfinite(sd) else 0.05


_PART = ("high", "low", "open")
# One symbol's open, high, low, close, excursion, part index (`excursions`) and its scale (`_scale`).
_Bar = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


def _what(bar: _Bar, t: int) -> str:
    """Bar `t`'s bad part in words: which price, the bar it sits on, how far out."""
    o, h, lo, c, e, which, s = bar
    part = _PART[int(which[t])]
    value = {"high": h, "low": lo, "open": o}[part][t]
    x = float(e[t])
    return (
        f"{part} {value:.6g} on a bar that opened {o[t]:.6g} and closed {c[t]:.6g} "
        f"(×{math.exp(min(x, 700.0)):.4g} beyond the rest of the bar, {x / s:.0f} robust deviations of "
        f"this symbol's daily moves)"
    )


# add(symbol column, severity, check, message, row index) - `joe.data.quality._Collector.add`
Add = Callable[[int, str, str, str, int], None]
# rows_text(row indices, symbol column) -> "row 12 (2023-01-03), ..." as the quality stage lists rows
RowsText = Callable[[np.ndarray, int], str]


def check_wicks(
    arr: dict[str, np.ndarray],
    keep: np.ndarray,
    add: Add,
    rows_text: RowsText,
    cfg: QualityConfig,
    *,
    strict_last: bool = True,
    span: np.ndarray | None = None,
) -> None:
    """Add the findings of the module docstring through `add` and clear `keep` for excluded symbols;
    `arr` (dates × symbols arrays of open/high/low/close) is not changed. `span` (dates × symbols,
    `joe.data.bar_spans`): a move across a gap in the data is judged per session; None: every bar one
    session after its previous one."""
    extreme = math.log(cfg.extreme_ratio)
    cols = np.flatnonzero(keep)
    # Every symbol's excursions at once; a symbol none of whose bars reaches `outlier_min_move` (nor the
    # extreme ratio) has no finding whatever its scale and median: its own pass is skipped (most symbols:
    # 500 daily series' scales and medians were 0.3 s CPU of a load).
    e_all, which_all = excursions(*(arr[k][:, cols] for k in ("open", "high", "low", "close")))
    top = np.where(np.isfinite(e_all), e_all, -np.inf).max(axis=0, initial=-np.inf)
    for i, j in enumerate(map(int, cols)):
        if not top[i] >= min(cfg.outlier_min_move, extreme):
            continue
        o, h, lo, c = (arr[k][:, j] for k in ("open", "high", "low", "close"))
        e, which = e_all[:, i], which_all[:, i]
        if not np.isfinite(e).any():
            continue
        sj = span[:, j] if span is not None else None
        s = _scale(c, sj)
        # The excursion judged against the symbol's moves: an open's leg from the previous close per session.
        judged = excursions(o, h, lo, c, sj)[0] if sj is not None and (sj > 1).any() else e
        last = int(np.flatnonzero(np.isfinite(c))[-1])
        bar = (o, h, lo, c, e, which, s)
        with np.errstate(invalid="ignore"):
            wild = np.flatnonzero(e > extreme)
            usual = TYPICAL_MULT * float(np.nanmedian(judged))
            far = (judged > cfg.outlier_k * s) & (judged > usual)
            odd = np.flatnonzero(far & (e >= cfg.outlier_min_move))
        if wild.size:
            t = int(wild[0])
            keep[j] = False
            add(
                j,
                "error",
                "extreme_move",
                f"{_what(bar, t)} is beyond {cfg.extreme_ratio:g}x: a bad tick or wrong units "
                f"({wild.size} such bar(s)). The symbol is excluded and no stop or target is settled on "
                f"it - fix or delete that row",
                t,
            )
            continue
        if not odd.size:
            continue
        if odd[-1] == last and strict_last:
            keep[j] = False
            add(
                j,
                "error",
                "last_bar_outlier",
                f"{_what(bar, last)} on the last bar (the as-of date): no later bar shows whether it was "
                f"real, and the run would score and settle stops on it. The symbol is excluded - check "
                f"the bar",
                last,
            )
            continue
        listed = rows_text(odd, j)
        add(
            j,
            "warning",
            "bar_outlier",
            f"{len(odd)} bar(s) with an open, high or low far outside the symbol's usual moves ({listed}); "
            f"first: {_what(bar, int(odd[0]))}. Check those bars: ATR and range read them, and stops "
            f"settle on them",
            int(odd[0]),
        )
