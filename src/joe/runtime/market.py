"""Loading what analysis needs from any `MarketData` source: the universe panel, index and VIX."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from joe.analysis.panel import FIELDS, Panel
from joe.brokers.base import MarketData, Sentiment
from joe.core.logging import get_logger
from joe.core.models import AssetClass, Instrument
from joe.data.calendars import exchange_of
from joe.data.collectors import HistoryCollector
from joe.data.coverage import left_out_findings
from joe.data.quality import Finding, QualityReport, check_bars, check_frame
from joe.data.regime_inputs import RegimeInput, describe_input

log = get_logger("joe.runtime.market")

INDEX_SYMBOLS = ("SPX", "SPY", "US500")
VIX_SYMBOLS = ("VIX", "VOLX")
MAX_CONCURRENT_HISTORY = 16
MAX_LISTED_ERRORS = 10  # excluded symbols named one per line in the console / warnings


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
    quality: QualityReport = field(default_factory=QualityReport)
    regime_inputs: list[RegimeInput] = field(default_factory=list)
    # The run's universe: the source's instruments up to `pipeline.universe_size` (analysed or not,
    # e.g. excluded by the data-quality stage). A held symbol outside it has left the universe.
    universe: list[str] = field(default_factory=list)
    # CPU seconds of this process per loading step ("panel": the histories into one panel, "quality":
    # the data-quality stage, "index": the index, VIX and sentiment); the backtest benchmark prints them.
    cpu_timings: dict[str, float] = field(default_factory=dict)


async def _first_history(
    source: MarketData, candidates: Sequence[str], report: QualityReport | None = None
) -> tuple[str, pd.DataFrame] | None:
    """The first candidate the source has, through the quality stage (an excluded series is skipped)."""
    locate = getattr(source, "locate", None)
    for sym in candidates:
        try:
            df = await source.history(sym, "1d")
        except Exception:  # a source without this symbol raises its own DataError/BrokerError
            continue
        if len(df) == 0:
            continue
        checked, rep = check_frame(  # regime inputs are indices (S&P 500, VIX): they never split
            sym, df, locate=locate, user_splits=getattr(source, "user_splits", None), can_split=False
        )
        if report is not None:
            report.extend(rep)
        if checked is not None:
            return sym, checked
    return None


def _cannot_split(source: MarketData, symbols: Sequence[str]) -> list[str]:
    """Symbols the source knows as indices, FX, crypto or commodities: only shares and funds split."""
    lookup = getattr(source, "instrument", None)
    if not callable(lookup):
        return []
    out = []
    for sym in symbols:
        try:
            kind = lookup(sym).asset_class
        except Exception:  # unknown to the source: assume it can split (the stricter reading)
            continue
        if kind not in (AssetClass.EQUITY, AssetClass.ETF):
            out.append(sym)
    return out


def _calendars(source: MarketData, symbols: Sequence[str]) -> dict[str, str | None]:
    """Each symbol's exchange calendar (`joe.data.calendars.exchange_of`: its listing suffix, the
    instrument's exchange, else the NYSE; None for FX and crypto), from what the source knows of it."""
    lookup = getattr(source, "instrument", None)
    out: dict[str, str | None] = {}
    for sym in symbols:
        kind, exchange = "equity", ""
        if callable(lookup):
            try:
                inst = lookup(sym)
                kind, exchange = inst.asset_class.value, inst.exchange
            except Exception:  # unknown to the source: a share on the NYSE, the common case
                pass
        out[sym] = exchange_of(sym, kind, exchange)
    return out


def quality_stage(source: MarketData, panel: Panel, report: QualityReport) -> Panel:
    """Run the data-quality checks over the panel: drop excluded symbols, apply repairs (splits)."""
    report.extend(list(getattr(source, "findings", []) or []))
    res = check_bars(
        panel.dates,
        panel.symbols,
        {f: getattr(panel, f) for f in FIELDS},
        locate=getattr(source, "locate", None),
        user_splits=getattr(source, "user_splits", None),
        no_splits=_cannot_split(source, panel.symbols),
        calendars=_calendars(source, panel.symbols),
    )
    report.extend(res.report)
    cols = np.flatnonzero(res.keep)
    return Panel(
        dates=panel.dates,
        symbols=[panel.symbols[j] for j in cols],
        **{f: res.fields[f][:, cols] for f in FIELDS},
    )


def _wide_panel(source: MarketData, symbols: Sequence[str], keep: int) -> Panel | None:
    """Fast path for local sources that can hand over wide (dates × symbols) frames directly."""
    wide = getattr(source, "panel", None)
    if not callable(wide):
        return None
    names = ("open", "high", "low", "close", "volume")
    many = getattr(source, "panels", None)  # every field at once (`FrameSource.panels`): one alignment
    wides = many(names, list(symbols)) if callable(many) else {f: wide(f, list(symbols)) for f in names}
    fields = {f: df.tail(keep) for f, df in wides.items()}
    close = fields["close"]
    has_close = close.notna().to_numpy().any(axis=0)  # a symbol with no close in the window is left out
    cols = [c for c, ok in zip(close.columns, has_close, strict=True) if ok]
    whole = bool(has_close.all())
    arrays = {f: (df if whole else df[cols]).to_numpy(np.float64) for f, df in fields.items()}
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
    report = QualityReport()
    cpu = {"panel": -time.process_time()}
    instruments = await source.universe(universe_scan)
    chosen = [i for i in instruments if i.symbol not in INDEX_SYMBOLS + VIX_SYMBOLS][:max_symbols]
    symbols = [i.symbol for i in chosen]
    panel = _wide_panel(source, symbols, keep_bars)
    if panel is None:
        got = await HistoryCollector(source, concurrency=MAX_CONCURRENT_HISTORY).collect_symbols(symbols)
        problems += [f"history for {sym} unavailable: {why}" for sym, why in got.errors.items()]
        report.extend(
            [
                Finding(sym, "error", "missing", f"no history from {source.name}: {why}")
                for sym, why in got.errors.items()
            ]
        )
        frames = got.frames
        if not frames:
            raise RuntimeError(f"no price history from source {source.name!r}: nothing to analyse")
        panel = Panel.from_frames({s: df.tail(keep_bars) for s, df in frames.items()})
    if panel.n_symbols == 0:
        raise RuntimeError(f"no price history from source {source.name!r}: nothing to analyse")
    cpu["panel"] += time.process_time()
    cpu["quality"] = -time.process_time()
    panel = quality_stage(source, panel, report)
    # Every symbol of a file/cache source is analysed or named: stale, not started, capped.
    capped = [i.symbol for i in instruments if i.symbol not in INDEX_SYMBOLS + VIX_SYMBOLS][max_symbols:]
    report.extend(
        left_out_findings(source, [*symbols, *INDEX_SYMBOLS, *VIX_SYMBOLS], panel.dates, capped=capped)
    )
    if panel.n_symbols == 0:
        raise RuntimeError(
            f"every series from {source.name!r} failed the data-quality checks: "
            + "; ".join(f.line() for f in report.findings[:3])
        )
    cpu["quality"] += time.process_time()
    cpu["index"] = -time.process_time()
    idx = await _first_history(source, INDEX_SYMBOLS, report)
    index_name = "S&P 500"
    if idx is None:
        index_name = "equal-weight index of the universe"
        problems.append(
            "no S&P 500 series from this source: the regime uses an equal-weight index of the universe"
        )
        spx = equal_weight_index(panel)
    else:
        spx = idx[1]
    vix_hit = await _first_history(source, VIX_SYMBOLS, report)
    if vix_hit is None:
        problems.append("no VIX series from this source: the regime uses realised volatility only")
    as_of = panel.dates[-1]
    inputs = [
        RegimeInput.of("S&P 500", idx[0] if idx else "equal-weight proxy", spx, as_of, proxy=idx is None),
        RegimeInput.of("VIX", vix_hit[0], vix_hit[1], as_of)
        if vix_hit
        else RegimeInput.missing("VIX", as_of),
    ]
    problems += [describe_input(i) for i in inputs if i.stale and i.last_date is not None]
    if report.findings:
        problems.append(report.summary())
        errors = [f for f in report.findings if f.severity == "error"]
        problems += excluded_lines(errors)
    try:
        sentiment = await source.sentiment(list(panel.symbols))
    except Exception as exc:
        problems.append(
            f"client sentiment unavailable ({type(exc).__name__}); scoring uses neutral sentiment"
        )
        sentiment = {}
    by_symbol = {i.symbol: i for i in chosen if i.symbol in panel}
    cpu["index"] += time.process_time()
    return MarketSnapshot(
        panel,
        by_symbol,
        spx,
        vix_hit[1] if vix_hit else None,
        sentiment,
        problems,
        index_name,
        report,
        inputs,
        symbols,
        cpu,
    )


def excluded_lines(errors: list[Finding], limit: int = MAX_LISTED_ERRORS) -> list[str]:
    """Console lines for excluded symbols: one per finding, but findings that differ only by symbol
    (e.g. 27 symbols left out by the universe cap) fold into one line naming the first few symbols.

    At most `limit` lines; the rest is counted, with a pointer to the report that lists every one.
    """
    groups: dict[tuple[str, str, str | None], list[Finding]] = {}
    for f in errors:
        where = f.file if f.row is None else f"{f.file}:{f.row}"
        groups.setdefault((f.check, f.message, where), []).append(f)
    lines: list[str] = []
    shown = 0
    for group in groups.values():
        if len(lines) == limit:
            break
        if len(group) == 1:
            lines.append(f"excluded: {group[0].line()}")
        else:
            names = ", ".join(f.symbol for f in group[:5]) + (", …" if len(group) > 5 else "")
            first = group[0]
            lines.append(f"excluded: {len(group)} symbols ({names}) {first.check}: {first.message}")
        shown += len(group)
    if shown < len(errors):
        lines.append(f"... and {len(errors) - shown} more exclusions (see the report)")
    return lines
