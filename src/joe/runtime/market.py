"""Loading what analysis needs from any `MarketData` source: the universe panel, index and VIX."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from joe.analysis.panel import Panel
from joe.brokers.base import MarketData, Sentiment
from joe.core.logging import get_logger
from joe.core.models import Instrument
from joe.data.collectors import HistoryCollector

log = get_logger("joe.runtime.market")

INDEX_SYMBOLS = ("SPX", "SPY", "US500")
VIX_SYMBOLS = ("VIX", "VOLX")
MAX_CONCURRENT_HISTORY = 16


@dataclass
class MarketSnapshot:
    """Everything analysis reads, loaded once per run."""

    panel: Panel
    instruments: dict[str, Instrument]
    spx: pd.DataFrame
    vix: pd.DataFrame | None
    sentiment: dict[str, Sentiment]
    warnings: list[str] = field(default_factory=list)
    # What `spx` really is, for the regime chart and the report.
    index_name: str = "S&P 500"


async def _first_history(source: MarketData, candidates: Sequence[str]) -> tuple[str, pd.DataFrame] | None:
    for sym in candidates:
        try:
            df = await source.history(sym, "1d")
        except Exception:  # a source without this symbol raises its own DataError/BrokerError
            continue
        if len(df) > 0:
            return sym, df
    return None


def _wide_panel(source: MarketData, symbols: Sequence[str], keep: int) -> Panel | None:
    """Fast path for local sources that can hand over wide (dates × symbols) frames directly."""
    wide = getattr(source, "panel", None)
    if not callable(wide):
        return None
    fields = {f: wide(f, list(symbols)).tail(keep) for f in ("open", "high", "low", "close", "volume")}
    close = fields["close"]
    cols = [c for c in close.columns if close[c].notna().any()]
    arrays = {f: df[cols].to_numpy(np.float64) for f, df in fields.items()}
    return Panel(dates=pd.DatetimeIndex(close.index), symbols=cols, **arrays)


def equal_weight_index(panel: Panel) -> pd.DataFrame:
    """A proxy index from the universe (mean daily return), for sources without an index series."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # A date where no symbol traded has no mean: it is a flat day of the proxy, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        rets = np.nanmean(np.diff(np.log(panel.close), axis=0), axis=1)
    level = 100 * np.exp(np.concatenate([[0.0], np.nancumsum(np.nan_to_num(rets))]))
    return pd.DataFrame(
        {"open": level, "high": level, "low": level, "close": level, "volume": 0.0}, index=panel.dates
    )


async def load_snapshot(
    source: MarketData, universe_scan: str | None, max_symbols: int, keep_bars: int = 2000
) -> MarketSnapshot:
    """Universe → histories → panel (last `keep_bars` bars), plus index, VIX and client sentiment."""
    problems: list[str] = []
    instruments = await source.universe(universe_scan)
    chosen = [i for i in instruments if i.symbol not in INDEX_SYMBOLS + VIX_SYMBOLS][:max_symbols]
    symbols = [i.symbol for i in chosen]
    panel = _wide_panel(source, symbols, keep_bars)
    if panel is None:
        got = await HistoryCollector(source, concurrency=MAX_CONCURRENT_HISTORY).collect_symbols(symbols)
        problems += [f"history for {sym} unavailable: {why}" for sym, why in got.errors.items()]
        frames = got.frames
        if not frames:
            raise RuntimeError(f"no price history from source {source.name!r}: nothing to analyse")
        panel = Panel.from_frames({s: df.tail(keep_bars) for s, df in frames.items()})
    if panel.n_symbols == 0:
        raise RuntimeError(f"no price history from source {source.name!r}: nothing to analyse")
    idx = await _first_history(source, INDEX_SYMBOLS)
    index_name = "S&P 500"
    if idx is None:
        index_name = "equal-weight index of the universe"
        problems.append(
            "no S&P 500 series from this source: the regime uses an equal-weight index of the universe"
        )
        spx = equal_weight_index(panel)
    else:
        spx = idx[1]
    vix_hit = await _first_history(source, VIX_SYMBOLS)
    if vix_hit is None:
        problems.append("no VIX series from this source: the regime uses realised volatility only")
    try:
        sentiment = await source.sentiment(list(panel.symbols))
    except Exception as exc:
        problems.append(
            f"client sentiment unavailable ({type(exc).__name__}); scoring uses neutral sentiment"
        )
        sentiment = {}
    by_symbol = {i.symbol: i for i in chosen if i.symbol in panel}
    return MarketSnapshot(
        panel, by_symbol, spx, vix_hit[1] if vix_hit else None, sentiment, problems, index_name
    )
