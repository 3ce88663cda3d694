"""Named scans, filters and watchlists on a hand-built panel with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from joe.analysis.panel import Panel
from joe.analysis.scanner import SCANS, MarketScanner, ScanDefinition, scan_metrics

from .synth import random_walk_panel

SYMS = ["GAIN", "LOSE", "GAPU", "GAPD", "VOLX", "HIGH", "LOW", "PENNY", "THIN", "FLAT"]


def _panel(n: int = 300) -> Panel:
    dates = pd.bdate_range("2019-01-01", periods=n, tz="UTC")
    k = len(SYMS)
    rng = np.random.default_rng(0)
    close = np.full((n, k), 50.0) * (1 + 0.01 * np.sin(np.arange(n)[:, None] / 7 + np.arange(k)))
    close[:, SYMS.index("PENNY")] = 0.5
    open_ = close.copy()
    high, low = close * 1.02, close * 0.98
    volume = np.full((n, k), 1e5) * rng.uniform(0.9, 1.1, (n, k))
    volume[:, SYMS.index("THIN")] = 100.0
    volume[:, SYMS.index("PENNY")] = 1e8
    last, prev = n - 1, n - 2
    c = {s: j for j, s in enumerate(SYMS)}
    close[last, c["GAIN"]] = close[prev, c["GAIN"]] * 1.10
    close[last, c["LOSE"]] = close[prev, c["LOSE"]] * 0.92
    open_[last, c["GAPU"]] = close[prev, c["GAPU"]] * 1.05
    open_[last, c["GAPD"]] = close[prev, c["GAPD"]] * 0.95
    volume[last, c["VOLX"]] = 6e5
    high[last, c["HIGH"]] = 60.0
    close[last, c["HIGH"]] = 52.0
    low[last, c["LOW"]] = 40.0
    close[last, c["LOW"]] = 48.0
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    return Panel(dates, SYMS, open_, high, low, close, volume)


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    scanner = MarketScanner(
        watchlists={"core": ["FLAT", "THIN", "NOPE"]}, min_price=1.0, min_avg_dollar_volume=1_000_000
    )
    return scanner.scan(_panel())


def test_each_scan_finds_its_symbol_first(result) -> None:  # type: ignore[no-untyped-def]
    r = result.rankings
    assert r["TOP_PERC_GAIN"][0] == "GAIN"
    assert r["TOP_PERC_LOSE"][0] == "LOSE"
    assert r["GAP_UP"] == ["GAPU"]
    assert r["GAP_DOWN"] == ["GAPD"]
    assert r["UNUSUAL_VOLUME"] == ["VOLX"]
    assert r["HIGH_VS_52W"][0] == "HIGH"
    assert "HIGH" not in r["LOW_VS_52W"] and r["LOW_VS_52W"][0] == "LOW"
    assert r["MOST_ACTIVE"][0] == "VOLX"


def test_filters_exclude_penny_and_illiquid(result) -> None:  # type: ignore[no-untyped-def]
    ranked = {s for names in result.rankings.values() for s in names}
    assert "PENNY" not in ranked
    assert result.filtered_out["price"] == 1
    assert result.filtered_out["liquidity"] == 1
    assert result.eligible == len(SYMS) - 2
    # THIN is illiquid but the user's watchlist names it explicitly.
    assert result.rankings["WATCHLIST:core"] == ["FLAT", "THIN"]
    thin = next(c for c in result.candidates if c.symbol == "THIN")
    assert thin.hits == ("WATCHLIST:core",)


def test_candidates_carry_hits_and_metrics(result) -> None:  # type: ignore[no-untyped-def]
    gain = next(c for c in result.candidates if c.symbol == "GAIN")
    assert "TOP_PERC_GAIN" in gain.hits
    assert gain.metrics["pct_change"] == pytest.approx(0.10)
    assert result.candidates == sorted(result.candidates, key=lambda c: (-len(c.hits), c.symbol))
    assert result.as_of == pd.Timestamp("2019-01-01", tz="UTC") + pd.offsets.BDay(299)


def test_limit_threshold_and_unknown_scan() -> None:
    p = random_walk_panel(3, n_dates=120, n_symbols=40)
    custom = {"UP": ScanDefinition("UP", "any gain", "pct_change", threshold=0.0, limit=3)}
    res = MarketScanner(scans=custom, min_avg_dollar_volume=0).scan(p)
    m = scan_metrics(p, p.n_dates - 1)
    gains = sorted((v, p.symbols[j]) for j, v in enumerate(m["pct_change"]) if v >= 0)
    assert res.rankings["UP"] == [s for _, s in reversed(gains)][:3]
    with pytest.raises(KeyError, match="unknown scan"):
        MarketScanner().scan(p, scans=["NOT_A_SCAN"])
    assert set(SCANS) >= {
        "TOP_PERC_GAIN",
        "TOP_PERC_LOSE",
        "MOST_ACTIVE",
        "HIGH_VS_52W",
        "LOW_VS_52W",
        "GAP_UP",
        "GAP_DOWN",
        "UNUSUAL_VOLUME",
    }


def test_scan_at_a_past_date_ignores_later_bars() -> None:
    p = random_walk_panel(4, n_dates=200, n_symbols=30, nan_frac=0.1)
    scanner = MarketScanner(min_avg_dollar_volume=0)
    for t in (60, 120, 199):
        full = scanner.scan(p, as_of=p.dates[t])
        part = scanner.scan(p.head(t + 1))
        assert full.rankings == part.rankings
        assert [c.symbol for c in full.candidates] == [c.symbol for c in part.candidates]


def test_missing_bar_uses_previous_valid_close() -> None:
    p = _panel(40)
    close = p.close.copy()
    close[-2, 0] = np.nan  # GAIN has no bar the day before
    q = Panel(p.dates, p.symbols, p.open, p.high, p.low, close, p.volume)
    m = scan_metrics(q, q.n_dates - 1)
    assert m["pct_change"][0] == pytest.approx(p.close[-1, 0] / p.close[-3, 0] - 1)


def test_unknown_volume_passes_liquidity_but_zero_volume_does_not() -> None:
    p = _panel(40)
    vol = p.volume.copy()
    vol[:, SYMS.index("FLAT")] = np.nan  # close-only series
    vol[:, SYMS.index("GAIN")] = 0.0
    q = Panel(p.dates, p.symbols, p.open, p.high, p.low, p.close, vol)
    res = MarketScanner(watchlists={}, min_avg_dollar_volume=1_000_000).scan(q)
    ranked = {s for names in res.rankings.values() for s in names}
    assert "FLAT" in ranked and "GAIN" not in ranked
