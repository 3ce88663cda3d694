"""`FileSource`: a user's own bars from a folder of CSV or Parquet files, one file per symbol.

The file name's stem is the symbol (`AAPL.csv`, `BTC-USD.parquet`, `EURUSD.csv.gz`). Columns are
matched case-insensitively with common aliases:

* time: date, datetime, timestamp, time, ts (or a DatetimeIndex in Parquet); naive times are UTC;
* prices: open, high, low, close (o/h/l/c, "last", "price"); if there is no close, "adj close" is used;
* volume: volume, vol (optional: missing volume is NaN).

open/high/low must all be present or all be absent; without them bars are derived from the closes
exactly as for the sample's close-only series. Every problem raises `DataError` naming the file, the
column or row, and what to do. Asset class is guessed from the symbol (BTC-USD → crypto, EURUSD → fx,
otherwise equity).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS
from joe.core.models import AssetClass, Instrument
from joe.data.errors import DataError
from joe.data.frames import FrameSource, bars_from_closes

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
PATTERNS = {"csv": ("*.csv", "*.csv.gz"), "parquet": ("*.parquet", "*.pq")}


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


def _pick(columns: dict[str, str], aliases: tuple[str, ...]) -> str | None:
    for a in aliases:
        if a in columns:
            return columns[a]
    return None


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
            if isinstance(df.index, pd.DatetimeIndex):
                df = df.reset_index(names=df.index.name or "date")
            return df
        return pd.read_csv(path)
    except Exception as exc:  # any reader failure becomes a message about this file
        raise DataError(
            f"{path.name}: cannot be read as {'Parquet' if 'parq' in path.name else 'CSV'} "
            f"({type(exc).__name__}: {exc}); check the file is not truncated or mislabelled"
        ) from exc


def load_bars(path: Path) -> pd.DataFrame:
    """Read and validate one file into a history frame (HISTORY_COLUMNS, sorted UTC index named ts).

    Bars whose open/close lie outside high/low are widened to contain them; `frame.attrs["repaired_bars"]`
    counts them. Everything else that is wrong raises `DataError`.
    """
    df = _read(path)
    f = path.name
    if df.empty:
        raise DataError(f"{f}: the file has no rows; remove it or fill it with bars")
    cols = {str(c).strip().lower(): c for c in df.columns}
    tcol = _pick(cols, TIME_ALIASES)
    if tcol is None:
        raise DataError(
            f"{f}: no date/time column (looked for {', '.join(TIME_ALIASES)}; found "
            f"{', '.join(map(str, df.columns))}); name the time column 'date' or 'timestamp'"
        )
    close_col = _pick(cols, PRICE_ALIASES["close"]) or _pick(cols, ADJ_CLOSE)
    if close_col is None:
        raise DataError(
            f"{f}: missing close column (looked for close, adj close, last, price; found "
            f"{', '.join(map(str, df.columns))}); add a 'close' column"
        )
    ohl = {k: _pick(cols, PRICE_ALIASES[k]) for k in ("open", "high", "low")}
    present = [k for k, v in ohl.items() if v is not None]
    if present and len(present) < 3:
        missing = sorted(set(ohl) - set(present))
        raise DataError(
            f"{f}: has {', '.join(present)} but no {', '.join(missing)} column; give all of "
            f"open/high/low, or none of them (bars are then derived from closes)"
        )

    raw_t = df[tcol]
    if pd.api.types.is_numeric_dtype(raw_t):
        # Epoch numbers: seconds or milliseconds, told apart by magnitude.
        unit = "ms" if raw_t.abs().max() > 1e11 else "s"
        ts = pd.to_datetime(raw_t, unit=unit, utc=True, errors="coerce")
    else:
        ts = pd.to_datetime(raw_t, utc=True, errors="coerce", format="mixed")
    bad_t = ts.isna()
    if bad_t.any():
        i = int(np.flatnonzero(bad_t.to_numpy())[0])
        raise DataError(
            f"{f}: row {i + 2}: cannot parse {str(tcol)!r} value {raw_t.iloc[i]!r} as a date/time; "
            f"use ISO dates like 2024-01-31 or 2024-01-31T14:30:00Z ({int(bad_t.sum())} bad rows)"
        )

    out = pd.DataFrame(index=pd.DatetimeIndex(ts, name="ts"))
    numeric = {"close": close_col, **{k: v for k, v in ohl.items() if v is not None}}
    vcol = _pick(cols, VOLUME_ALIASES)
    if vcol is not None:
        numeric["volume"] = vcol
    for name, col in numeric.items():
        vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64")
        bad = np.isnan(vals) & df[col].notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{f}: row {i + 2}: {str(col)!r} value {df[col].iloc[i]!r} is not a number; "
                f"fix or delete that row"
            )
        out[name] = vals
    if out["close"].isna().any():
        i = int(np.flatnonzero(out["close"].isna().to_numpy())[0])
        raise DataError(
            f"{f}: row {i + 2}: empty {str(close_col)!r}; every bar needs a close - fill it or delete the row"
        )
    prices = [c for c in ("open", "high", "low", "close") if c in out]
    nonpos = (out[prices] <= 0).any(axis=1).to_numpy()
    if nonpos.any():
        i = int(np.flatnonzero(nonpos)[0])
        raise DataError(
            f"{f}: row {i + 2}: zero or negative price ({out.iloc[i][prices].to_dict()}); prices must "
            f"be > 0 - fix or delete the row"
        )
    if "volume" in out and (out["volume"] < 0).any():
        i = int(np.flatnonzero((out["volume"] < 0).to_numpy())[0])
        raise DataError(f"{f}: row {i + 2}: negative volume {out['volume'].iloc[i]}; volumes must be >= 0")
    repaired = 0
    if "high" in out:
        inverted = (out["high"] < out["low"]).to_numpy()
        if inverted.any():
            i = int(np.flatnonzero(inverted)[0])
            raise DataError(
                f"{f}: row {i + 2}: high < low ({out.iloc[i][prices].to_dict()}); check for swapped "
                f"high/low columns"
            )
        # Vendors' bars sometimes have an open or close a hair outside high/low (rounding, adjustments);
        # widen the range to contain the body rather than reject the file, and count it.
        body_hi = out[["open", "close"]].max(axis=1)
        body_lo = out[["open", "close"]].min(axis=1)
        outside = (out["high"] < body_hi) | (out["low"] > body_lo)
        repaired = int(outside.sum())
        out["high"] = np.maximum(out["high"], body_hi)
        out["low"] = np.minimum(out["low"], body_lo)
    order = np.argsort(out.index.to_numpy(), kind="stable")
    out = out.iloc[order]
    dup = out.index.duplicated()
    if dup.any():
        raise DataError(f"{f}: duplicate timestamp {out.index[dup][0]}; keep one bar per time")
    if "high" in out:
        frame = out.reindex(columns=list(HISTORY_COLUMNS))
    else:
        frame = bars_from_closes(out["close"])
        if "volume" in out:
            frame["volume"] = out["volume"]
    frame = frame.astype("float64")
    frame.attrs["repaired_bars"] = repaired
    return frame


def _native_timeframe(frames: dict[str, pd.DataFrame]) -> str:
    """The bar size the files share (median spacing); daily unless the data is clearly intraday."""
    gaps = [f.index.to_series().diff().median() for f in frames.values() if len(f) > 2]
    if not gaps:
        return "1d"
    step = min(gaps)
    if step >= pd.Timedelta(hours=20):
        return "1d"
    minutes = max(1, round(step / pd.Timedelta(minutes=1)))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class FileSource(FrameSource):
    """MarketData over a folder (or one file) of CSV/Parquet bars, validated on load, clipped at as_of."""

    def __init__(
        self,
        folder: str | Path,
        pattern: str | tuple[str, ...] = PATTERNS["csv"],
        *,
        as_of: date | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(as_of)
        patterns = (pattern,) if isinstance(pattern, str) else pattern
        if kind is None:
            kind = "parquet" if any(".parq" in p or p.endswith(".pq") for p in patterns) else "csv"
        self.name = kind
        self.folder = Path(folder).expanduser()
        if self.folder.is_file():
            paths = [self.folder]
        elif self.folder.is_dir():
            paths = sorted({p for pat in patterns for p in self.folder.glob(pat) if p.is_file()})
        else:
            raise DataError(
                f"{kind} source: {self.folder} does not exist; give a folder with one file per symbol"
            )
        if not paths:
            raise DataError(
                f"{kind} source: no files matching {', '.join(patterns)} in {self.folder}; put one "
                f"file per symbol there (e.g. AAPL.csv with date, open, high, low, close, volume)"
            )
        self._frames: dict[str, pd.DataFrame] = {}
        for p in paths:
            sym = _symbol_of(p)
            if sym in self._frames:
                raise DataError(f"{p.name}: symbol {sym} appears in two files in {self.folder}; keep one")
            self._frames[sym] = load_bars(p)
            self._instruments[sym] = Instrument(symbol=sym, asset_class=guess_asset_class(sym), name=sym)
        self.native_timeframe = _native_timeframe(self._frames)
        self._last = max(f.index[-1] for f in self._frames.values()).date()

    @property
    def last_date(self) -> date:
        return self._last

    def _raw(self, symbol: str) -> pd.DataFrame | None:
        return self._frames.get(symbol)

    def describe(self) -> str:
        """Plain words on what data this source serves."""
        live = self.universe_now()
        first = min(f.index[0] for f in self._frames.values()).date()
        repaired = sum(int(f.attrs.get("repaired_bars", 0)) for f in self._frames.values())
        return (
            f"{self.name} files in {self.folder} as of {self.as_of}: {len(self._frames)} symbols "
            f"({self.native_timeframe} bars, {first}..{self._last}), {len(live)} trading at the as-of date"
            + (f"; {repaired} bars had open/close outside high/low and were widened." if repaired else ".")
        )
