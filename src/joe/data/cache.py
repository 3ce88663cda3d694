"""A local bar cache for broker history: one Parquet file per (source, timeframe, symbol).

Layout: ``<data dir>/cache/bars/<source>/<timeframe>/<SYMBOL>.parquet`` (columns open..volume, a UTC
index named ts). It survives restarts and is shared by everything that reads history through
`CachedHistory`: ``joe run`` wraps broker market data in it (`joe.runtime.sources`), and the daemon
and ``joe backtest`` use the same `open_cached_history(market_data, data_dir)` call.

Reading the cache without a broker (``joe backtest --source cache``): `open_cache_source(data_dir)`
gives a `CacheSource`, an ordinary `joe.data.frames.FrameSource` over the cached files (clipped at an
as-of date, served through the MarketData protocol, so the same quality stage and pipeline run on it),
and `load_cached_panel(data_dir)` gives the cached bars as one `joe.analysis.panel.Panel`.

Fetch rule (`CachedHistory.history`):

* nothing cached, or the request starts before the first cached bar → one full request;
* otherwise one request from the `refetch_bars`-th last cached bar onwards (default 3): the bars
  after the last cached one *and* the last few again, because brokers correct recent bars (late
  prints, consolidated volume). Re-fetched bars replace the cached ones, so a correction wins and
  a bar the broker withdrew disappears; cached bars before the answer's first bar stay (an answer
  that starts later than asked does not say they were withdrawn: `merge_bars`). When *every*
  re-fetched bar comes back rescaled by one factor
  (`rescaled`: the broker adjusted its history for a split or dividend), the cached bars are in the old
  units: they are dropped and the whole history fetched again (a second request), never joined;
* a request whose `end` is before the last cached bar (a backtest window in the past) is served from
  the cache without any request.

So a second run on the same day sends one small request per instrument (a few days of bars) instead of
two years of them, which is what IBKR's historical-data pacing needs. Contract ids are cached too
(`ContractIdCache`, ``<data dir>/cache/contracts/<source>.json``): the second run sends no
contract-details request for an instrument it already knows. Files are written atomically
(temp file + rename); an unreadable cache file - or one that is not what the cache writes (`_not_ours`:
a naive index, the time as a column, prices stored as text) - is deleted and fetched again, never
trusted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS, MarketData, Sentiment
from joe.core.clock import ensure_utc, utcnow
from joe.core.models import Instrument, Quote
from joe.data.errors import DataError
from joe.data.files import guess_asset_class
from joe.data.frames import FrameSource

if TYPE_CHECKING:
    from joe.analysis.panel import Panel

log = logging.getLogger(__name__)

REFETCH_BARS = 3
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def _safe(part: str) -> str:
    """A symbol or source name as a file-name component: unsafe characters percent-encoded as UTF-8
    (`BRK/B` → `BRK%2FB`), so `unsafe_name` gives the symbol back; `.`/`..` alone are encoded too."""
    out = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part) or "_"
    return out.replace(".", "%2E") if out in (".", "..") else out


def unsafe_name(part: str) -> str:
    """The symbol (or source name) a cache file-name component stands for (inverse of `_safe`)."""
    return urllib.parse.unquote(part)


class BarCache:
    """Parquet files of bars under `root` (normally `<data dir>/cache/bars`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, source: str, symbol: str, timeframe: str) -> Path:
        return self.root / _safe(source) / _safe(timeframe) / f"{_safe(symbol)}.parquet"

    def load(self, source: str, symbol: str, timeframe: str) -> pd.DataFrame | None:
        """The cached bars (sorted, UTC), or None when there are none or the file is unreadable."""
        p = self.path(source, symbol, timeframe)
        if not p.exists():
            return None
        try:
            df = pd.read_parquet(p)
            why = _not_ours(df)
        except Exception as exc:  # a torn or foreign file: drop it and fetch again
            why = f"{type(exc).__name__}: {exc}"
        if why is not None:
            log.warning("bar cache: %s is unreadable (%s); fetching again", p, why)
            p.unlink(missing_ok=True)
            return None
        df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").rename("ts")
        return df.reindex(columns=list(HISTORY_COLUMNS)).astype("float64")

    def save(self, source: str, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        p = self.path(source, symbol, timeframe)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        frame.reindex(columns=list(HISTORY_COLUMNS)).astype("float64").to_parquet(tmp)
        tmp.replace(p)


def _not_ours(df: pd.DataFrame) -> str | None:
    """Why a Parquet file is not what `BarCache.save` writes (None when it is): a UTC-zoned datetime
    index, the price columns as floats, sorted, one bar per time. Anything else is refetched."""
    if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
        return (
            f"its index is {type(df.index).__name__}{'' if df.index.dtype.kind != 'M' else ' without a zone'}"
        )
    missing = [c for c in HISTORY_COLUMNS if c not in df.columns]
    if missing:
        return f"no {', '.join(missing)} column"
    wrong = [c for c in HISTORY_COLUMNS if df[c].dtype.kind != "f"]
    if wrong:
        return f"{', '.join(wrong)} not stored as numbers"
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        return "bars out of order or duplicated"
    return None


def rescaled(cached: pd.DataFrame, fresh: pd.DataFrame, tol: float = 0.001) -> float | None:
    """The factor by which the broker rescaled bars already cached (a split or dividend adjustment of
    its history: every re-fetched bar's close × the same factor, beyond `tol`), or None.

    A correction of one recent bar (a late print) changes that bar only: not a rescale.
    """
    both = cached.index.intersection(fresh.index)
    if not len(both):
        return None
    ratio = (fresh.loc[both, "close"] / cached.loc[both, "close"]).to_numpy("float64")
    ratio = ratio[pd.notna(ratio)]
    if not ratio.size or (abs(ratio - 1) <= tol).any():
        return None
    if ratio.max() / ratio.min() - 1 > tol:
        return None
    return float(ratio.mean())


def merge_bars(cached: pd.DataFrame, fresh: pd.DataFrame, since: pd.Timestamp | None) -> pd.DataFrame:
    """Cached bars before `since`, then the fresh ones (which replace everything from `since` on).

    The fresh answer replaces only what it covers: cached bars before its first bar stay even when
    they are after `since`. An answer that starts later than asked (the broker's window was shorter
    than the request meant: a duration counted in its own days) is no evidence that those bars were
    withdrawn; a bar missing *between* fresh bars or after the last one is withdrawn and goes."""
    cut = since
    if since is not None and not fresh.empty and fresh.index[0] > since:
        cut = fresh.index[0]
    keep = cached if cut is None else cached.loc[cached.index < cut]
    if since is None:
        keep = keep.loc[~keep.index.isin(fresh.index)]
    out = pd.concat([keep, fresh.reindex(columns=list(HISTORY_COLUMNS))]).sort_index()
    out = out[~out.index.duplicated(keep="last")]
    out.index.name = "ts"
    return out.astype("float64")


class CachedHistory:
    """A `MarketData` whose `history` goes through a `BarCache`; everything else is the inner source's."""

    def __init__(
        self,
        inner: MarketData,
        cache: BarCache,
        *,
        source_key: str | None = None,
        refetch_bars: int = REFETCH_BARS,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.key = source_key or inner.name
        self.refetch_bars = max(1, refetch_bars)
        self.name = inner.name
        self.requests = 0  # history requests sent to the inner source by this instance

    def __getattr__(self, item: str) -> Any:  # describe(), extended_hours, connect... of the inner source
        return getattr(self.inner, item)

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        return await self.inner.universe(scan)

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        return await self.inner.quotes(symbols)

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        return await self.inner.sentiment(symbols)

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Bars of `symbol` from the cache, topped up with one request (see the module docstring)."""
        t0 = None if start is None else pd.Timestamp(ensure_utc(start))
        t1 = None if end is None else pd.Timestamp(ensure_utc(end))
        cached = self.cache.load(self.key, symbol, timeframe)
        if cached is not None and cached.empty:
            cached = None
        in_past = t1 is not None and t1 < cached.index[-1] if cached is not None else False
        if cached is not None and in_past and (t0 is None or t0 >= cached.index[0]):
            return _window(cached, t0, t1)
        if cached is None or (t0 is not None and t0 < cached.index[0]):
            self.requests += 1
            fresh = await self.inner.history(symbol, timeframe, start, end)
            if cached is None:
                merged = fresh.reindex(columns=list(HISTORY_COLUMNS))
            else:
                merged = merge_bars(cached, fresh, None)
        else:
            since = cached.index[-min(self.refetch_bars, len(cached))]
            self.requests += 1
            fresh = await self.inner.history(symbol, timeframe, since.to_pydatetime(), end)
            factor = None if fresh.empty else rescaled(cached, fresh)
            if factor is not None:
                # The broker adjusted its history (a split: IBKR and Capital.com serve adjusted bars):
                # the cached bars are in the old units, so joining them would leave a false jump at
                # the join. Drop them and fetch the whole history again (one more request).
                log.warning(
                    "bar cache: %s %s bars re-fetched ×%.6g of the cached ones (the broker adjusted its "
                    "history); fetching the whole history again",
                    symbol,
                    timeframe,
                    factor,
                )
                self.requests += 1
                merged = (await self.inner.history(symbol, timeframe, start, end)).reindex(
                    columns=list(HISTORY_COLUMNS)
                )
            else:
                # An empty answer is no evidence that the cached bars were withdrawn: keep them.
                merged = cached if fresh.empty else merge_bars(cached, fresh, since)
        if not merged.empty:
            self.cache.save(self.key, symbol, timeframe, merged)
        return _window(merged, t0, t1)


def _window(df: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    out = df
    if start is not None:
        out = out.loc[out.index >= start]
    if end is not None:
        out = out.loc[out.index <= end]
    return out.copy()


def open_cached_history(
    market_data: MarketData, data_dir: str | Path, *, source_key: str | None = None
) -> CachedHistory:
    """The shared entry point: `market_data` with its history cached under `<data_dir>/cache/bars`.

    A source that looks contracts up (IBKR: `use_contract_ids`) also gets the contract-id cache
    (`contract_id_cache`), so a second run sends no contract-details request for known instruments.
    """
    key = source_key or market_data.name
    use_ids = getattr(market_data, "use_contract_ids", None)
    if callable(use_ids):
        use_ids(contract_id_cache(data_dir, key))
    return CachedHistory(market_data, BarCache(Path(data_dir) / "cache" / "bars"), source_key=source_key)


# -- contract ids (IBKR conId) --------------------------------------------------------------------------

CONTRACT_ID_MAX_AGE = timedelta(days=7)


class ContractIdCache:
    """Broker contract ids (IBKR ``conId``) by instrument, in ``<data dir>/cache/contracts/<source>.json``.

    Key: ``SYMBOL|EXCHANGE|CURRENCY`` (e.g. ``AAPL|SMART|USD``); value: the id, the primary exchange and
    when the broker gave it. A second run then sends no contract-details request for a known
    instrument. Refresh rule: an entry older than `max_age` (7 days: ids change on corporate actions
    such as a merger or a symbol change) is looked up again, and a caller drops (`forget`) an entry the
    broker rejected and looks it up once more. The file is written atomically; an unreadable file is
    treated as empty (the ids are fetched again), never trusted.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_age: timedelta = CONTRACT_ID_MAX_AGE,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.now = now
        self._entries: dict[str, dict[str, Any]] | None = None

    @staticmethod
    def key(symbol: str, exchange: str = "SMART", currency: str = "USD") -> str:
        return f"{symbol.upper()}|{exchange.upper()}|{currency.upper()}"

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
                self._entries = {str(k): dict(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.warning(
                    "contract id cache %s is unreadable (%s); looking the ids up again", self.path, exc
                )
                self._entries = {}
        return self._entries

    def get(self, symbol: str, exchange: str = "SMART", currency: str = "USD") -> dict[str, Any] | None:
        """``{"con_id": int, "primary_exchange": str, "fetched_at": iso}`` when known and fresh, else None."""
        entry = self._load().get(self.key(symbol, exchange, currency))
        if not entry:
            return None
        try:
            age = self.now() - datetime.fromisoformat(str(entry["fetched_at"]))
            con_id = int(entry["con_id"])
        except (KeyError, ValueError, TypeError):
            return None
        return entry if con_id > 0 and abs(age) <= self.max_age else None  # a clock step back is no age

    def put(
        self,
        symbol: str,
        con_id: int,
        *,
        exchange: str = "SMART",
        currency: str = "USD",
        primary_exchange: str = "",
    ) -> None:
        entries = self._load()
        entries[self.key(symbol, exchange, currency)] = {
            "con_id": int(con_id),
            "primary_exchange": primary_exchange,
            "fetched_at": self.now().isoformat(),
        }
        self._save(entries)

    def forget(self, symbol: str, exchange: str = "SMART", currency: str = "USD") -> None:
        entries = self._load()
        if entries.pop(self.key(symbol, exchange, currency), None) is not None:
            self._save(entries)

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, sort_keys=True, indent=0), encoding="utf-8")
        tmp.replace(self.path)


def contract_id_cache(data_dir: str | Path, source: str) -> ContractIdCache:
    """The contract-id cache of `source` under `data_dir` (``cache/contracts/<source>.json``)."""
    return ContractIdCache(Path(data_dir) / "cache" / "contracts" / f"{_safe(source)}.json")


# -- reading the cache without a broker (joe backtest --source cache) ---------------------------------


def cache_root(data_dir: str | Path) -> Path:
    """Where `open_cached_history` keeps bars: ``<data_dir>/cache/bars``."""
    return Path(data_dir) / "cache" / "bars"


def cached_sources(data_dir: str | Path) -> list[str]:
    """The sources with cached bars under `data_dir` (e.g. ``["capital", "ibkr"]``)."""
    root = cache_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(unsafe_name(p.name) for p in root.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))


class CacheSource(FrameSource):
    """A `FrameSource` over the bars `open_cached_history` saved for one source and timeframe.

    Symbols are the cached files' names; asset classes are guessed from them as for CSV files.
    Everything a `FrameSource` does applies: nothing after `as_of` is visible, `universe()` lists
    the symbols live at `as_of`, `panel(field)` gives wide frames. No request is ever sent.
    """

    account_for_unstarted = True

    def __init__(
        self, data_dir: str | Path, source: str, timeframe: str = "1d", *, as_of: date | None = None
    ) -> None:
        super().__init__(as_of)
        self.name = f"cache:{source}"
        self.native_timeframe = timeframe
        self.cache = BarCache(cache_root(data_dir))
        folder = self.cache.root / _safe(source) / _safe(timeframe)
        self._frames: dict[str, pd.DataFrame] = {}
        for p in sorted(folder.glob("*.parquet")):
            sym = unsafe_name(p.name.removesuffix(".parquet"))
            frame = self.cache.load(source, sym, timeframe)
            if frame is None or frame.empty:
                continue
            self._frames[sym] = frame
            self._instruments[sym] = Instrument(symbol=sym, asset_class=guess_asset_class(sym), name=sym)
        if not self._frames:
            have = cached_sources(data_dir)
            hint = f"cached sources: {', '.join(have)}" if have else "the cache is empty"
            raise DataError(
                f"no cached {timeframe} bars for source {source!r} under {self.cache.root} ({hint}); "
                f"run `joe run --once --broker {source}` first to fill it"
            )
        self._last = max(f.index[-1] for f in self._frames.values()).date()

    @property
    def last_date(self) -> date:
        return self._last

    def _raw(self, symbol: str) -> pd.DataFrame | None:
        return self._frames.get(symbol)

    def describe(self) -> str:
        first = min(f.index[0] for f in self._frames.values()).date()
        return (
            f"bar cache {self.cache.root} ({self.name}, {self.native_timeframe}) as of {self.as_of}: "
            f"{len(self._frames)} symbols, {first}..{self._last}"
        )


def open_cache_source(
    data_dir: str | Path, source: str | None = None, timeframe: str = "1d", *, as_of: date | None = None
) -> CacheSource:
    """The bar cache under `data_dir` as a `CacheSource` (for ``joe backtest --source cache``).

    `source` is the broker whose bars to read (``ibkr``, ``capital``); None picks the only one cached
    and raises `DataError` naming the choices when there are several (or none).
    """
    if source is None:
        have = cached_sources(data_dir)
        if len(have) != 1:
            what = f"several sources ({', '.join(have)}); name one" if have else "nothing"
            raise DataError(f"the bar cache under {cache_root(data_dir)} holds {what}")
        source = have[0]
    return CacheSource(data_dir, source, timeframe, as_of=as_of)


def load_cached_panel(
    data_dir: str | Path,
    source: str | None = None,
    timeframe: str = "1d",
    *,
    symbols: Sequence[str] | None = None,
    as_of: date | None = None,
) -> Panel:
    """The cached bars of `source` as one `Panel` (dates × symbols, NaN where a symbol has no bar).

    `symbols` None means every cached symbol with a bar in the 10 days before `as_of` (the
    `FrameSource` live universe); `as_of` None means the last cached date. Bars are as cached (the
    broker's), not yet through the quality stage: a backtest that wants the run's checks passes the
    `CacheSource` (`open_cache_source`) to `joe.runtime.market.load_snapshot` instead.
    Raises `DataError` when nothing is cached for the source.
    """
    from joe.analysis.panel import Panel

    src = open_cache_source(data_dir, source, timeframe, as_of=as_of)
    frames = src.frames(symbols)
    frames = {s: f for s, f in frames.items() if not f.empty}
    if not frames:
        raise DataError(f"{src.name}: no cached bars up to {src.as_of} for {list(symbols or [])}")
    return Panel.from_frames(frames)
