#!/usr/bin/env python
"""Regenerate Joe's embedded sample dataset (src/joe/data/sample/) from permissively licensed PyPI packages.

Run it with an interpreter that has the optional `[data]` extra installed::

    pip install 'joe[data]'          # arch, skfolio, bokeh_sampledata, pmdarima
    python scripts/build_sample_data.py

It deliberately does not import `joe`: it only reads the packages' shipped data and writes

* `*.csv.gz` files (gzip with mtime 0, so a rebuild from the same package versions is byte-identical),
  either *long* (date, symbol, open, high, low, close, volume) for true OHLCV series or *wide*
  (date, one column per symbol) for close-only series;
* `provenance.json` (machine-readable, checked by tests/data) and `PROVENANCE.md` (for people).

Every series is cut to the S&P 500 window of `arch.data.sp500` (1999-01-04 .. 2018-12-31) so the whole
dataset shares one "as of" date. Nothing AGPL (e.g. `backtesting.test`) is copied.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "joe" / "data" / "sample"
PRICE_DECIMALS = 4
GZIP = {"method": "gzip", "mtime": 0, "compresslevel": 9}

SKFOLIO_CAVEAT = (
    "skfolio documents these datasets as provided solely for testing and example purposes; they are "
    "stale and not intended for investment, trading or commercial use. Joe uses them only as demo data."
)

NAMES = {
    "SPX": "S&P 500 index",
    "NASDAQ": "NASDAQ Composite index",
    "VIX": "CBOE Volatility Index",
    "WTI": "WTI crude oil spot price (FRED DCOILWTICO)",
    "AAPL": "Apple",
    "AMD": "Advanced Micro Devices",
    "BAC": "Bank of America",
    "BBY": "Best Buy",
    "CVX": "Chevron",
    "GE": "General Electric",
    "HD": "Home Depot",
    "JNJ": "Johnson & Johnson",
    "JPM": "JPMorgan Chase",
    "KO": "Coca-Cola",
    "LLY": "Eli Lilly",
    "MRK": "Merck",
    "MSFT": "Microsoft",
    "PEP": "PepsiCo",
    "PFE": "Pfizer",
    "PG": "Procter & Gamble",
    "RRC": "Range Resources",
    "UNH": "UnitedHealth",
    "WMT": "Walmart",
    "XOM": "Exxon Mobil",
    "IBM": "IBM",
    "GOOG": "Alphabet (Google)",
    "MTUM": "iShares MSCI USA Momentum Factor ETF",
    "QUAL": "iShares MSCI USA Quality Factor ETF",
    "SIZE": "iShares MSCI USA Size Factor ETF",
    "USMV": "iShares MSCI USA Min Vol Factor ETF",
    "VLUE": "iShares MSCI USA Value Factor ETF",
}


def _licence(package: str) -> str:
    meta = md.metadata(package)
    expr = meta.get_all("License-Expression") or []
    if expr:
        return str(expr[0])
    # Some packages put the whole licence text in `License`; its first line names it ("BSD 3-Clause License").
    text = str((meta.get_all("License") or [""])[0]).strip().splitlines()
    if text and len(text[0]) < 60:
        return text[0].removesuffix(" License").strip()
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if "License" in c]
    return classifiers[0] if classifiers else "unknown"


def _pkg(package: str) -> dict[str, str]:
    return {"package": package, "version": md.version(package), "licence": _licence(package)}


def _clip(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    idx = pd.DatetimeIndex(df.index)
    return df.loc[(idx >= start) & (idx <= end)]


def _ohlcv(df: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Normalise an OHLCV frame (any column case) into the long layout."""
    cols = {c.lower().replace(" ", "_"): c for c in df.columns}
    out = pd.DataFrame(
        {k: df[cols[k]].astype("float64") for k in ("open", "high", "low", "close", "volume")}, index=df.index
    ).dropna(subset=["close"])
    out[["open", "high", "low", "close"]] = out[["open", "high", "low", "close"]].round(PRICE_DECIMALS)
    out["volume"] = out["volume"].round(0)
    out.insert(0, "symbol", symbol)
    out.index = pd.DatetimeIndex(out.index).normalize().rename("date")
    return out


def _series_meta(
    symbol: str, s: pd.Series | pd.DataFrame, asset_class: str, fields: str, **extra: Any
) -> dict:
    idx = pd.DatetimeIndex(s.index)
    return {
        "symbol": symbol,
        "name": NAMES.get(symbol.split("@")[0], symbol),
        "asset_class": asset_class,
        "fields": fields,
        "start": idx.min().date().isoformat(),
        "end": idx.max().date().isoformat(),
        "rows": len(s),
        **extra,
    }


def _write_long(name: str, frames: list[pd.DataFrame]) -> int:
    df = pd.concat(frames)
    df.to_csv(OUT / name, compression=GZIP, date_format="%Y-%m-%d", float_format="%.12g")
    return len(df)


def _write_wide(name: str, wide: pd.DataFrame) -> int:
    wide = wide.round(PRICE_DECIMALS)
    wide.index = pd.DatetimeIndex(wide.index).normalize().rename("date")
    wide.to_csv(OUT / name, compression=GZIP, date_format="%Y-%m-%d", float_format="%.12g")
    return len(wide)


def build() -> dict[str, Any]:
    import arch.data.nasdaq
    import arch.data.sp500
    import arch.data.vix
    import arch.data.wti
    import pmdarima.datasets
    import skfolio.datasets
    from bokeh_sampledata import stocks

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.csv.gz"):
        old.unlink()
    files: list[dict[str, Any]] = []

    # -- arch: S&P 500 and NASDAQ OHLCV (the window every other series is cut to) ------------------------
    spx = arch.data.sp500.load()
    start, end = pd.DatetimeIndex(spx.index).min(), pd.DatetimeIndex(spx.index).max()
    ndq = _clip(arch.data.nasdaq.load(), start, end)
    long = [_ohlcv(spx, "SPX"), _ohlcv(ndq, "NASDAQ")]
    rows = _write_long("arch_ohlcv.csv.gz", long)
    files.append(
        {
            "file": "arch_ohlcv.csv.gz",
            "layout": "long",
            **_pkg("arch"),
            "rows": rows,
            "loaders": ["arch.data.sp500.load()", "arch.data.nasdaq.load()"],
            "upstream": "not stated by the package (Yahoo Finance style OHLC / Adj Close / Volume)",
            "series": [
                _series_meta(
                    "SPX",
                    long[0],
                    "index",
                    "ohlcv",
                    loader="arch.data.sp500.load()",
                    source_column="sp500: Open/High/Low/Close/Volume",
                    aliases=["SPY", "^GSPC", "SP500"],
                    note="also the SPY proxy",
                ),
                _series_meta(
                    "NASDAQ",
                    long[1],
                    "index",
                    "ohlcv",
                    loader="arch.data.nasdaq.load()",
                    source_column="nasdaq: Open/High/Low/Close/Volume",
                    aliases=["^IXIC"],
                ),
            ],
        }
    )

    # -- arch: VIX and WTI (close only) -------------------------------------------------------------------
    vix = _clip(arch.data.vix.load()["vix"].dropna(), start, end)
    wti = _clip(arch.data.wti.load()["DCOILWTICO"].dropna(), start, end)
    wide = pd.concat({"VIX": vix, "WTI": wti}, axis=1, sort=True)
    rows = _write_wide("arch_close.csv.gz", wide)
    files.append(
        {
            "file": "arch_close.csv.gz",
            "layout": "wide",
            **_pkg("arch"),
            "rows": rows,
            "loaders": ["arch.data.vix.load()", "arch.data.wti.load()"],
            "upstream": "VIX: not stated by the package; "
            "WTI: FRED series DCOILWTICO (per the package docstring)",
            "series": [
                _series_meta(
                    "VIX",
                    vix,
                    "index",
                    "close",
                    loader="arch.data.vix.load()",
                    source_column="vix",
                    aliases=["^VIX"],
                    note="missing values in the package dropped",
                ),
                _series_meta(
                    "WTI",
                    wti,
                    "commodity",
                    "close",
                    loader="arch.data.wti.load()",
                    source_column="DCOILWTICO",
                    note="FRED holidays (missing values) dropped",
                ),
            ],
        }
    )

    # -- skfolio: 20 S&P 500 stocks and 5 factor ETFs (adjusted closes) -----------------------------------
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_stocks = _clip(skfolio.datasets.load_sp500_dataset(), start, end)
        sk_factors = _clip(skfolio.datasets.load_factors_dataset(), start, end)
    wide = pd.concat([sk_stocks, sk_factors], axis=1, sort=True)
    rows = _write_wide("skfolio_close.csv.gz", wide)
    series = [
        _series_meta(
            str(c),
            sk_stocks[c].dropna(),
            "equity",
            "close",
            source_column=str(c),
            loader="skfolio.datasets.load_sp500_dataset()",
        )
        for c in sk_stocks.columns
    ] + [
        _series_meta(
            str(c),
            sk_factors[c].dropna(),
            "etf",
            "close",
            source_column=str(c),
            loader="skfolio.datasets.load_factors_dataset()",
        )
        for c in sk_factors.columns
    ]
    files.append(
        {
            "file": "skfolio_close.csv.gz",
            "layout": "wide",
            **_pkg("skfolio"),
            "rows": rows,
            "loaders": ["skfolio.datasets.load_sp500_dataset()", "skfolio.datasets.load_factors_dataset()"],
            "upstream": "daily adjusted closing prices (source not stated by the package)",
            "caveat": SKFOLIO_CAVEAT,
            "series": series,
        }
    )

    # -- bokeh_sampledata: AAPL / GOOG / IBM / MSFT OHLCV (public domain, Quandl WIKI) ---------------------
    bk = stocks.data
    long, series = [], []
    for ticker in ("AAPL", "GOOG", "IBM", "MSFT"):
        d = bk[bk["ticker"] == ticker].set_index("date").sort_index()
        # The package's OHLCV is unadjusted; scale by adj_close/close so splits do not show as gaps.
        factor = d["adj_close"] / d["close"]
        adj = d[["open", "high", "low", "close"]].mul(factor, axis=0)
        adj["volume"] = d["volume"] / factor
        symbol = ticker if ticker in ("GOOG", "IBM") else f"{ticker}@bokeh"
        frame = _ohlcv(_clip(adj, start, end), symbol)
        long.append(frame)
        series.append(
            _series_meta(
                symbol,
                frame,
                "equity",
                "ohlcv",
                source_column=f"stocks.data[ticker=={ticker}]",
                transform="split/dividend adjusted: OHLC x adj_close/close, volume / that",
            )
        )
    rows = _write_long("bokeh_ohlcv.csv.gz", long)
    files.append(
        {
            "file": "bokeh_ohlcv.csv.gz",
            "layout": "long",
            **_pkg("bokeh_sampledata"),
            "rows": rows,
            "data_licence": "Public Domain (Quandl WIKI Prices, per the bokeh_sampledata.stocks docstring)",
            "loaders": ["bokeh_sampledata.stocks.data"],
            "upstream": "Quandl WIKI Prices (archived copy)",
            "series": series,
        }
    )

    # -- pmdarima: MSFT OHLCV (Kaggle "price volume data for all US stocks & ETFs") -------------------------
    msft = pmdarima.datasets.load_msft()
    msft = msft.assign(Date=pd.to_datetime(msft["Date"])).set_index("Date").sort_index()
    frame = _ohlcv(_clip(msft, start, end), "MSFT@pmdarima")
    rows = _write_long("pmdarima_ohlcv.csv.gz", [frame])
    files.append(
        {
            "file": "pmdarima_ohlcv.csv.gz",
            "layout": "long",
            **_pkg("pmdarima"),
            "rows": rows,
            "loaders": ["pmdarima.datasets.load_msft()"],
            "upstream": "Kaggle 'Price Volume Data for All US Stocks & ETFs' (per the package docstring)",
            "series": [
                _series_meta(
                    "MSFT@pmdarima", frame, "equity", "ohlcv", source_column="Open/High/Low/Close/Volume"
                )
            ],
        }
    )

    return {
        "dataset": "joe sample market data",
        "builder": "scripts/build_sample_data.py",
        "python": sys.version.split()[0],
        "pandas": pd.__version__,
        "window": {"start": start.date().isoformat(), "end": end.date().isoformat()},
        "as_of_default": end.date().isoformat(),
        "conventions": {
            "long": "columns date,symbol,open,high,low,close,volume; one row per symbol and trading day",
            "wide": "columns date + one close column per symbol; empty cell = no observation",
            "close_only": "Joe derives bars from closes: open = previous close, high/low = max/min(open, "
            "close), volume = NaN (unknown). Nothing is invented.",
            "duplicates": "when two packages ship the same ticker, the skfolio series (it covers the as-of "
            "date) "
            "keeps the plain ticker and the others are named TICKER@package",
            "rounding": f"prices rounded to {PRICE_DECIMALS} decimals, volumes to whole units",
        },
        "files": files,
        "skipped": [
            {"what": "backtesting.test (GOOG, EURUSD, BTCUSD)", "why": "AGPL-3.0 licensed; not copied"},
            {
                "what": "skfolio load_ftse100_dataset / load_nasdaq_dataset / load_sp500_implied_vol_dataset",
                "why": "downloaded from the network on first use, not shipped inside the package",
            },
            {
                "what": "skfolio data after 2018-12-31 and every series before 1999-01-04",
                "why": "cut to the S&P 500 window so the whole dataset shares one as-of date",
            },
            {"what": "bokeh_sampledata FB", "why": "196 rows only (2012-05-18 .. 2013-03-01)"},
        ],
        "synthetic": {
            "shipped": False,
            "generator": "joe.data.synthetic.synthetic_universe",
            "driven_by": "SPX daily log returns (beta + sector factor + GARCH(1,1) idiosyncratic noise)",
            "label": "symbols start with 'SYN-', Instrument.synthetic is True, names start with 'Synthetic'",
        },
    }


def write_markdown(prov: dict[str, Any]) -> None:
    lines = [
        "# Provenance of Joe's embedded sample data",
        "",
        f"Generated by `{prov['builder']}` (Python {prov['python']}, pandas {prov['pandas']}). "
        f"Window {prov['window']['start']} .. {prov['window']['end']}; the default as-of date is "
        f"{prov['as_of_default']}.",
        "",
        "| file | package | version | licence | symbols | rows |",
        "|---|---|---|---|---|---|",
    ]
    for f in prov["files"]:
        syms = ", ".join(s["symbol"] for s in f["series"])
        lic = f["licence"] + (f" (data: {f['data_licence']})" if "data_licence" in f else "")
        lines.append(f"| `{f['file']}` | {f['package']} | {f['version']} | {lic} | {syms} | {f['rows']} |")
    lines += [
        "",
        "## Series",
        "",
        "| symbol | name | class | fields | start | end | rows | loader / column |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in prov["files"]:
        for s in f["series"]:
            src = s.get("loader", ", ".join(f["loaders"])) + f" / `{s['source_column']}`"
            src += "".join(f"; {s[k]}" for k in ("transform", "note") if k in s)
            lines.append(
                f"| {s['symbol']} | {s['name']} | {s['asset_class']} | {s['fields']} | {s['start']} "
                f"| {s['end']} | {s['rows']} | {src} |"
            )
    lines += ["", "## Upstream and caveats", ""]
    for f in prov["files"]:
        lines.append(f"- `{f['file']}`: {f['upstream']}." + (f" {f['caveat']}" if "caveat" in f else ""))
    lines += ["", "## Conventions", ""] + [f"- **{k}**: {v}" for k, v in prov["conventions"].items()]
    lines += ["", "## Not included", ""] + [f"- {s['what']}: {s['why']}" for s in prov["skipped"]]
    syn = prov["synthetic"]
    lines += [
        "",
        "## Synthetic universe (not shipped)",
        "",
        f"Generated at load time by `{syn['generator']}`, driven by {syn['driven_by']}. "
        f"It is clearly labelled: {syn['label']}.",
        "",
    ]
    (OUT / "PROVENANCE.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    prov = build()
    (OUT / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")
    write_markdown(prov)
    total = sum((OUT / f["file"]).stat().st_size for f in prov["files"])
    print(f"wrote {len(prov['files'])} data files ({total / 1e6:.2f} MB) to {OUT}")


if __name__ == "__main__":
    main()
