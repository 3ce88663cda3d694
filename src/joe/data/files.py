"""Reading one price file (CSV or Parquet) of a user's bars into a checked frame (`read_file`); the folder
source over such files is `joe.data.file_source.FileSource`.

The file name's stem is the symbol (`AAPL.csv`, `BTC-USD.parquet`, `EURUSD.csv.gz`). Columns are
matched case-insensitively with common aliases:

* time: date, datetime, timestamp, time, ts, day (or a DatetimeIndex in Parquet); read by
  `joe.data.dates`: daily bars are dated by their session date whatever the UTC offset, day-first vs
  month-first is decided per file (or refused), intraday naive times are UTC;
* prices: open, high, low, close (o/h/l/c, "last", "price"); if there is no close, "adj close" is used;
* volume: volume, vol (optional: missing volume is NaN).

open/high/low must all be present or all be absent; without them bars are derived from the closes
exactly as for the sample's close-only series. File extensions match in any case (`MSFT.CSV`). A
problem with one file raises `DataError` naming the file, the column or row, and what to do;
`FileSource` turns it into an error finding that excludes that symbol (dated at the bad bar when one
row is at fault). Only the rows up to the as-of date are read and checked: a bad row after it changes
nothing before it. A file leaping past the date
the other files agree on, or past today, is a ``future_date`` error (`future_limit`); a wrong
``--date-format`` refuses the run naming every file it misreads (`joe.data.dates.WrongDateFormat`).
Asset class is guessed from the symbol (BTC-USD → crypto, EURUSD → fx, otherwise equity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS
from joe.core.models import AssetClass
from joe.data.dates import (
    DateFormats,
    bar_index,
    parse_times,
)
from joe.data.duplicates import drop_repeats
from joe.data.errors import DataError
from joe.data.file_read import Cells, read_cells
from joe.data.file_times import _before_bad_time, _dated
from joe.data.frames import as_of_cutoff, bars_from_closes
from joe.data.quality import Finding
from joe.data.sessions import drop_non_session_bars

TIME_ALIASES = ("date", "datetime", "timestamp", "time", "ts", "day")
PRICE_ALIASES = {
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "last", "price", "close_price"),
}
ADJ_CLOSE = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")
VOLUME_ALIASES = ("volume", "vol", "v")
CRYPTO = {"BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "BNB", "DOT", "AVAX", "LINK", "USDT", "USDC"}
FIAT = {
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CHF",
    "AUD",
    "CAD",
    "NZD",
    "SEK",
    "NOK",
    "DKK",
    "HKD",
    "SGD",
    "CNH",
    "MXN",
}


def guess_asset_class(symbol: str) -> AssetClass:
    """Crypto when a known coin leads the symbol, FX for two fiat codes, else equity."""
    parts = [p for p in re.split(r"[-/_.: ]", symbol.upper()) if p]
    head = parts[0] if parts else ""
    if head in CRYPTO or any(
        symbol.upper().startswith(c) and symbol.upper()[len(c) :] in FIAT | {"USDT"} for c in CRYPTO
    ):
        return AssetClass.CRYPTO
    flat = "".join(parts)
    if len(flat) == 6 and flat[:3] in FIAT and flat[3:] in FIAT:
        return AssetClass.FX
    return AssetClass.EQUITY


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _pick(columns: dict[str, object], aliases: tuple[str, ...]) -> object | None:
    for a in aliases:
        if a in columns:
            return columns[a]
    return None


@dataclass
class LoadedFile:
    """One file read and validated: its bars, the file line of each bar, and load-time findings."""

    symbol: str
    file: str
    frame: pd.DataFrame
    rows: np.ndarray  # 1-based line in the file (header = line 1) of each frame row
    findings: list[Finding] = field(default_factory=list)
    daily: bool = True


def _shown(value: object) -> str:
    """A cell as the user wrote it: text quoted ('n/a'), a number as a number (-inf, not np.float64(-inf))."""
    return repr(value) if isinstance(value, str) else str(value)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _at(message: str, line: int, when: pd.Timestamp) -> DataError:
    """A DataError for one dated bar: its file line and date go with it (`DataError.row` / `.date`)."""
    err = DataError(message)
    err.row, err.date = int(line), when.date().isoformat()
    return err


def read_file(
    path: Path, date_format: str | DateFormats | None = None, end: date | None = None
) -> LoadedFile:
    """Read and validate one file (see the module docstring); DataError names the file and row at fault.

    Daily bars are dated by their session date whatever the UTC offset (`joe.data.dates`). Bars whose
    open/close lie outside high/low are widened to contain them and reported as a warning with rows.

    `end` (the as-of date): only the rows dated up to it are kept and checked, so a bad row after it
    (a price that is no number, NaN, zero or negative, high < low, two bars at one time...) cannot
    exclude the file from a run or backtest that ends before it. A file with no row up to `end` is
    checked whole (it has no bar in the window either way). A refusal for one bar carries that bar's
    line and date (`DataError.row` / `.date`). The time column is still read whole: the rows' dates
    decide which rows are cut (and a day-first/month-first reading is decided from every row).
    """
    df, note = read_cells(path)
    f = path.name
    sym = _symbol_of(path)
    if df.empty:
        raise DataError(f"{f}: the file has no rows; remove it or fill it with bars")
    cols = {str(c).strip().lower(): c for c in df.names}
    tcol = _pick(cols, TIME_ALIASES)
    if tcol is None:
        raise DataError(
            f"{f}: no date/time column (looked for {', '.join(TIME_ALIASES)}; found "
            f"{', '.join(map(str, df.names))}"
            + (f"; {note}" if note else "")
            + "); name the time column 'date' or 'timestamp'"
        )
    close_col = _pick(cols, PRICE_ALIASES["close"]) or _pick(cols, ADJ_CLOSE)
    if close_col is None:
        raise DataError(
            f"{f}: missing close column (looked for close, adj close, last, price; found "
            f"{', '.join(map(str, df.names))}); add a 'close' column"
        )
    ohl = {k: _pick(cols, PRICE_ALIASES[k]) for k in ("open", "high", "low")}
    present = [k for k, v in ohl.items() if v is not None]
    if present and len(present) < 3:
        missing = sorted(set(ohl) - set(present))
        raise DataError(
            f"{f}: has {', '.join(present)} but no {', '.join(missing)} column; give all of "
            f"open/high/low, or none of them (bars are then derived from closes)"
        )

    formats = date_format if isinstance(date_format, DateFormats) else DateFormats.parse(date_format)
    fmt, named = formats.for_file(f, sym)
    try:
        index, daily = _dated(df, tcol, f, fmt, named)
    except DataError:
        head = _before_bad_time(df.series(tcol), end)
        if head is None:
            raise
        index, daily = bar_index(parse_times(df.series(tcol).iloc[:head], f, str(tcol), fmt, named))
    # The rows kept (file positions), None: all of them.
    keep: np.ndarray | None = None
    if end is not None:
        inside = np.asarray(index < as_of_cutoff(end))
        if inside.any() and (not inside.all() or len(index) < len(df)):
            keep = np.flatnonzero(inside)
            index = index[keep]
    pos = keep if keep is not None else np.arange(len(index))  # each kept row's position in the file
    # The checks run on plain float64 arrays, one per column (pandas column assignment and row-wise
    # reductions cost ~15 ms a file, most of a 500-file load); the frame is built once at the end.
    out: dict[str, np.ndarray] = {}
    numeric = {"close": close_col, **{k: v for k, v in ohl.items() if v is not None}}
    vcol = _pick(cols, VOLUME_ALIASES)
    if vcol is not None:
        numeric["volume"] = vcol
    for name, col in numeric.items():
        vals, bad = df.numbers(col)
        if keep is not None:
            vals, bad = vals[keep], bad[keep]
        if bad.any():
            i = _first_bad(bad)
            raise _at(
                f"{f}: row {pos[i] + 2}: {str(col)!r} value {_shown(df.series(col).iloc[pos[i]])} is not a "
                f"number; fix or delete that row",
                pos[i] + 2,
                index[i],
            )
        inf = np.isinf(vals)
        if inf.any():
            i = _first_bad(inf)
            shown = _shown(df.series(col).iloc[pos[i]])
            raise _at(
                f"{f}: row {pos[i] + 2}: {str(col)!r} value {shown} is not a finite number "
                f"({int(inf.sum())} such rows); fix or delete that row",
                pos[i] + 2,
                index[i],
            )
        out[name] = vals
    if np.isnan(out["close"]).any():
        i = _first_bad(np.isnan(out["close"]))
        raise _at(
            f"{f}: row {pos[i] + 2}: empty {str(close_col)!r}; every bar needs a close - fill it or delete "
            f"the row",
            pos[i] + 2,
            index[i],
        )
    prices = [c for c in ("open", "high", "low", "close") if c in out]

    def row(i: int) -> dict[str, float]:  # a bar's prices for a message, as pandas shows them
        return pd.DataFrame({c: out[c] for c in prices}).iloc[i].to_dict()

    nonpos = np.zeros(len(index), dtype=bool)
    for c in prices:
        nonpos |= out[c] <= 0
    if nonpos.any():
        i = _first_bad(nonpos)
        raise _at(
            f"{f}: row {pos[i] + 2}: zero or negative price ({row(i)}); prices must be > 0 - fix or delete "
            f"the row",
            pos[i] + 2,
            index[i],
        )
    if "volume" in out and (out["volume"] < 0).any():
        i = _first_bad(out["volume"] < 0)
        raise _at(
            f"{f}: row {pos[i] + 2}: negative volume {out['volume'][i]}; volumes must be >= 0",
            pos[i] + 2,
            index[i],
        )
    findings: list[Finding] = []
    if note:
        findings.append(Finding(sym, "warning", "separator", f"{note}; CSV files are comma-separated", f))
    lines = pos + 2
    if "high" in out:
        inverted = out["high"] < out["low"]
        if inverted.any():
            i = _first_bad(inverted)
            raise _at(
                f"{f}: row {pos[i] + 2}: high < low ({row(i)}); check for swapped high/low columns",
                pos[i] + 2,
                index[i],
            )
        # Vendors' bars sometimes have an open or close a hair outside high/low (rounding, adjustments);
        # widen the range to contain the body rather than reject the file, and say which rows.
        # fmax/fmin skip a NaN open as pandas' row max/min do.
        body_hi = np.fmax(out["open"], out["close"])
        body_lo = np.fmin(out["open"], out["close"])
        outside = (out["high"] < body_hi) | (out["low"] > body_lo)
        if outside.any():
            rows = lines[outside]
            listed = ", ".join(str(r) for r in rows[:5]) + (
                f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            )
            findings.append(
                Finding(
                    sym,
                    "warning",
                    "ohlc",
                    f"{len(rows)} bar(s) with open/close outside high/low, range widened to contain them "
                    f"(rows {listed})",
                    f,
                    int(rows[0]),
                    index[outside][0].date().isoformat(),
                )
            )
        out["high"] = np.maximum(out["high"], body_hi)
        out["low"] = np.minimum(out["low"], body_lo)
    # Sorted on the index's integer time (one unit, UTC): `to_numpy()` of a tz-aware index builds a
    # Timestamp object per bar (~2.5 µs each; a third of a 500-file load went there).
    order = np.argsort(index.asi8, kind="stable")
    if (order == np.arange(len(order))).all():  # already in time order: no copy
        ordered = index
    else:
        ordered, lines = index[order], lines[order]
        out = {k: v[order] for k, v in out.items()}
    ordered, lines, out, repeats = drop_repeats(ordered, lines, out)
    if repeats.size:
        shown = ", ".join(str(int(r)) for r in sorted(repeats)[:5]) + (" ..." if repeats.size > 5 else "")
        note = f"{repeats.size} row(s) repeat an earlier bar exactly (rows {shown}): each kept once"
        findings.append(Finding(sym, "warning", "duplicate_rows", note, f, int(min(repeats))))
    dup = ordered.duplicated(keep=False)
    if dup.any():
        rows = sorted(int(r) for r in lines[dup][:2])
        raise _at(
            f"{f}: duplicate timestamp: rows {rows[0]} and {rows[1]} are the same "
            f"{'session ' + str(ordered[dup][0].date()) if daily else 'time ' + str(ordered[dup][0])}; "
            f"keep one bar per {'day' if daily else 'time'}" + _several_symbols(df, cols),
            rows[0],
            ordered[dup][0],
        )
    if "high" in out:
        # One (columns x bars) float64 block, as pandas makes of a dict of columns, built without the
        # dict's per-column checks.
        no_volume = np.full(len(ordered), np.nan)
        block = np.vstack([out.get(c, no_volume) for c in HISTORY_COLUMNS]).astype("float64", copy=False)
        frame = pd.DataFrame(block.T, index=ordered, columns=list(HISTORY_COLUMNS), copy=False)
    else:
        frame = bars_from_closes(pd.Series(out["close"], index=ordered))
        if "volume" in out:
            frame["volume"] = out["volume"]
    return LoadedFile(sym, f, frame, lines, findings, daily)


def _several_symbols(cells: Cells, cols: dict[str, object]) -> str:
    """A hint for a long-format file (a symbol column of several values, as daily_500.parquet): Joe
    reads one file per symbol, so its repeated dates are the symbols' bars, not bad rows."""
    col = _pick(cols, ("symbol", "ticker", "instrument"))
    if col is None:
        return ""
    names = pd.unique(cells.series(col).dropna().astype(str))
    if len(names) < 2:
        return ""
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (
        f"; the file holds {len(names)} symbols in its {str(col)!r} column ({shown}): Joe reads one file "
        f"per symbol - split it into one file per symbol (AAPL.parquet, ...) in the folder"
    )


def _read_checked(path: Path, formats: DateFormats, end: date | None = None) -> LoadedFile:
    """`read_file` (up to `end`), then its bars on no session left out: what `FileSource` keeps of a
    file read cleanly."""
    return drop_non_session_bars(read_file(path, formats, end), guess_asset_class(_symbol_of(path)))


def load_bars(path: Path, date_format: str | DateFormats | None = None) -> pd.DataFrame:
    """Read and validate one file into a history frame (HISTORY_COLUMNS, sorted UTC index named ts)."""
    return read_file(path, date_format).frame
