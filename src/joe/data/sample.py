"""The embedded default source: real daily history shipped with Joe plus a labelled synthetic universe.

The real part lives in `joe/data/sample/` (built by `scripts/build_sample_data.py`; `provenance.json`
and `PROVENANCE.md` name every package, licence, symbol and date range). The synthetic part is
generated at load time by `joe.data.synthetic`, driven by the real S&P 500 ("SPX") returns.

Close-only series (skfolio, VIX, WTI) become bars through `bars_from_closes`: open = previous close,
high/low = max/min(open, close), volume unknown (NaN). `describe()` says plainly what was used.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS, Sentiment
from joe.core.models import AssetClass, Instrument
from joe.data.errors import DataError
from joe.data.frames import (
    SENTIMENT_LOOKBACK,
    FrameSource,
    as_of_cutoff,
    bars_from_closes,
    synthetic_sentiment,
)
from joe.data.synthetic import SyntheticUniverse, synthetic_universe

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
INDEX_SYMBOL = "SPX"


@dataclass(frozen=True, eq=False)
class SampleDataset:
    """The shipped real series, loaded once per process."""

    frames: dict[str, pd.DataFrame]
    instruments: dict[str, Instrument]
    fields: dict[str, str]  # symbol -> "ohlcv" | "close"
    origin: dict[str, str]  # symbol -> package
    aliases: dict[str, str]
    provenance: dict[str, Any]
    first_date: date
    last_date: date


def _utc_index(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values, format="%Y-%m-%d")).tz_localize("UTC").rename("ts")


@functools.lru_cache(maxsize=4)
def load_sample(folder: str = str(SAMPLE_DIR)) -> SampleDataset:
    """Read the shipped dataset (cached). DataError if the package was installed without its data."""
    path = Path(folder)
    try:
        prov = json.loads((path / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"sample data is missing or unreadable in {path} ({exc}); reinstall Joe or run "
            f"scripts/build_sample_data.py"
        ) from exc
    frames: dict[str, pd.DataFrame] = {}
    instruments: dict[str, Instrument] = {}
    fields: dict[str, str] = {}
    origin: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for spec in prov["files"]:
        raw = pd.read_csv(path / spec["file"])
        if spec["layout"] == "long":
            raw.index = _utc_index(raw.pop("date"))
            for sym, grp in raw.groupby("symbol", sort=False):
                frames[str(sym)] = grp.drop(columns="symbol").astype("float64")[list(HISTORY_COLUMNS)]
        else:
            raw.index = _utc_index(raw.pop("date"))
            for col in raw.columns:
                frames[str(col)] = bars_from_closes(raw[col].dropna())
        for s in spec["series"]:
            sym = s["symbol"]
            fields[sym], origin[sym] = s["fields"], spec["package"]
            instruments[sym] = Instrument(
                symbol=sym,
                asset_class=AssetClass(s["asset_class"]),
                name=s["name"],
                currency="USD",
                exchange="",
            )
            aliases.update({a: sym for a in s.get("aliases", [])})
    return SampleDataset(
        frames=frames,
        instruments=instruments,
        fields=fields,
        origin=origin,
        aliases=aliases,
        provenance=prov,
        first_date=date.fromisoformat(prov["window"]["start"]),
        last_date=date.fromisoformat(prov["window"]["end"]),
    )


@functools.lru_cache(maxsize=8)
def sample_synthetic(n: int = 500, seed: int = 7, bars: int = 2000) -> SyntheticUniverse:
    """The synthetic universe driven by the shipped SPX log returns (cached per n, seed, bars)."""
    close = load_sample().frames[INDEX_SYMBOL]["close"]
    returns = np.log(close).diff().dropna()
    return synthetic_universe(n=n, bars=bars, seed=seed, index_returns=returns)


class SampleSource(FrameSource):
    """MarketData over the embedded real sample plus `n_synthetic` labelled synthetic instruments.

    Universe scans: 'default' (live at as_of), 'all', 'real', 'synthetic', asset classes, and the
    watchlists 'sp500-20' (skfolio's 20 S&P 500 stocks), 'factors' (5 factor ETFs), 'indices'.
    Aliases: SPY/^GSPC/SP500 -> SPX, ^VIX -> VIX, ^IXIC -> NASDAQ.
    """

    name = "sample"
    native_timeframe = "1d"

    def __init__(
        self,
        n_synthetic: int = 500,
        seed: int = 7,
        as_of: date | None = None,
        include_synthetic: bool = True,
        bars: int = 2000,
    ) -> None:
        super().__init__(as_of)
        self._data = load_sample()
        if as_of is not None and not self._data.first_date <= as_of <= self._data.last_date:
            where = (
                "before the sample data starts"
                if as_of < self._data.first_date
                else "after the sample data ends"
            )
            raise DataError(
                f"as-of {as_of} is {where}; choose a date between {self._data.first_date} and "
                f"{self._data.last_date} (or use your own data: --source csv:PATH)"
            )
        self._syn: SyntheticUniverse | None = None
        self._syn_col: dict[str, int] = {}
        if include_synthetic and n_synthetic > 0:
            self._syn = sample_synthetic(n_synthetic, seed, bars)
            self._syn_col = {s: j for j, s in enumerate(self._syn.symbols)}
        self._instruments = dict(self._data.instruments)
        if self._syn is not None:
            self._instruments.update({i.symbol: i for i in self._syn.instruments})
        self._aliases = dict(self._data.aliases)
        self.seed = seed

    @property
    def last_date(self) -> date:
        return self._data.last_date

    @property
    def provenance(self) -> dict[str, Any]:
        """The shipped provenance record (packages, licences, symbols, date ranges)."""
        return self._data.provenance

    @property
    def synthetic(self) -> SyntheticUniverse | None:
        return self._syn

    def fields_of(self, symbol: str) -> str:
        """'ohlcv' for true bars, 'close' for close-only real series, 'synthetic' for generated ones."""
        sym = self.resolve(symbol)
        return self._data.fields.get(sym, "synthetic")

    def last_bar(self, symbol: str) -> pd.Timestamp | None:
        """Like the base, but synthetic symbols answer from the shared dates (no frame is built)."""
        sym = self.resolve(symbol)
        if self._syn is None or sym not in self._syn_col:
            return super().last_bar(sym)
        cut = int(self._syn.dates.searchsorted(as_of_cutoff(self.as_of), side="left"))
        return self._syn.dates[cut - 1] if cut > 0 else None

    def locate(self, symbol: str, ts: pd.Timestamp) -> tuple[str | None, int | None]:
        """The shipped file a real series comes from (rows are not tracked for packed files)."""
        for spec in self._data.provenance["files"]:
            if any(s["symbol"] == symbol for s in spec["series"]):
                return str(spec["file"]), None
        return ("synthetic" if symbol in self._syn_col else None), None

    def _raw(self, symbol: str) -> pd.DataFrame | None:
        if symbol in self._data.frames:
            return self._data.frames[symbol]
        if self._syn is not None and symbol in self._syn_col:
            return self._syn.frame(self._syn_col[symbol])
        return None

    def _watchlists(self) -> dict[str, list[str]]:
        by_origin: dict[str, list[str]] = {}
        for spec in self._data.provenance["files"]:
            for s in spec["series"]:
                by_origin.setdefault(s.get("loader", ""), []).append(s["symbol"])
        return {
            "sp500-20": by_origin.get("skfolio.datasets.load_sp500_dataset()", []),
            "factors": by_origin.get("skfolio.datasets.load_factors_dataset()", []),
            "indices": [s for s, i in self._data.instruments.items() if i.asset_class is AssetClass.INDEX],
        }

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        """Synthetic client sentiment for synthetic instruments only (SYN-* symbols); real ones have none."""
        if self._syn is None:
            return {}
        wanted: dict[str, str] = {}  # resolved symbol -> the name the caller used
        for requested in symbols:
            try:
                sym = self.resolve(requested)
            except DataError:
                continue
            if sym in self._syn_col:
                wanted[sym] = requested
        cut = int(self._syn.dates.searchsorted(as_of_cutoff(self.as_of), side="left"))
        if not wanted or cut == 0:
            return {}
        cols = [self._syn_col[s] for s in wanted]
        closes = self._syn.close[max(0, cut - SENTIMENT_LOOKBACK - 1) : cut, cols]
        got = synthetic_sentiment(list(wanted), closes, self._syn.dates[cut - 1].date())
        return {wanted[s]: replace(v, symbol=wanted[s]) for s, v in got.items()}

    def panel(self, field: str = "close", symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Wide (dates x symbols) frame of one field at as_of; synthetic columns come straight from arrays."""
        if field not in HISTORY_COLUMNS:
            raise DataError(f"unknown field {field!r}; choose one of {', '.join(HISTORY_COLUMNS)}")
        cache = symbols is None
        if cache and field in self._panels:
            return self._panels[field].copy(deep=False)
        syms = (
            [i.symbol for i in self.universe_now()] if symbols is None else [self.resolve(s) for s in symbols]
        )
        syn = [s for s in syms if s in self._syn_col]
        real = [s for s in syms if s not in self._syn_col]
        parts = []
        if real:
            parts.append(super().panel(field, real))
        if syn and self._syn is not None:
            cut = int(self._syn.dates.searchsorted(as_of_cutoff(self.as_of), side="left"))
            cols = [self._syn_col[s] for s in syn]
            parts.append(
                pd.DataFrame(self._syn.column(field)[:cut, cols], index=self._syn.dates[:cut], columns=syn)
            )
        out = pd.concat(parts, axis=1, sort=True)[syms] if parts else pd.DataFrame()
        out.index.name = "ts"
        if cache:
            self._panels[field] = out
        return out

    def describe(self) -> str:
        """Plain words on what data this source serves."""
        real = [s for s in self._data.instruments if not self.native(s).empty]
        live_real = [s for s in real if self.is_live(s)]
        packages = sorted({self._data.origin[s] for s in real})
        close_only = sum(1 for s in live_real if self._data.fields[s] == "close")
        text = (
            f"sample data as of {self.as_of}: {len(real)} real series from PyPI packages "
            f"({', '.join(packages)}; "
            f"{self._data.first_date}..{self._data.last_date}), {len(live_real)} trading at the as-of date "
            f"({close_only} of them close-only)."
        )
        if self._syn is None:
            return text + " No synthetic instruments."
        n_live = sum(1 for s in self._syn_col if self.is_live(s))
        return text + (
            f" Plus {len(self._syn_col)} SYNTHETIC instruments (SYN-*, seed {self.seed}, "
            f"driven by real SPX returns, "
            f"{self._syn.dates[0].date()}..{self._syn.dates[-1].date()}"
            + (f", first {self._syn.bootstrapped} bars block-bootstrapped" if self._syn.bootstrapped else "")
            + f"), {n_live} with data at the as-of date. Synthetic prices are not market data."
        )
