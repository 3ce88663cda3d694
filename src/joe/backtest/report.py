"""A backtest's report folder, `data/backtests/<id>/`:

* `report.html` — self-contained (charts inlined as SVG, `joe.backtest.charts`): equity, drawdown,
  monthly returns heat map, exposure, the regime breakdown and the trade list with entry and exit reasons;
* `report.md` — the same numbers as text;
* `trades.csv` — one row per closed trade; `equity.csv` — one row per day;
* `metrics.json` — every metric (`joe.backtest.metrics`), the options, the regime breakdown and what
  reproduces the report (`reproduce`: the effective configuration, its digest, the code version).

The equity curve of the metrics and charts starts with the starting cash at the close before the first
simulated day (`BacktestResult.equity`); `equity.csv` has one row per simulated day. The text and the
page show money with thousands separators and 2 decimals, fractions as percentages.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from joe.backtest.charts import heat_map, line_chart
from joe.backtest.engine import BacktestResult
from joe.backtest.metrics import (
    CAGR_TOO_SHORT,
    TURNOVER_UNIT,
    compute_metrics,
    drawdown_series,
    monthly_returns,
    r_multiple,
    regime_breakdown,
)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class BacktestPaths:
    """Where each file of a backtest report is."""

    dir: Path
    html: Path
    markdown: Path
    trades: Path
    equity: Path
    metrics: Path

    def all(self) -> list[Path]:
        return [self.html, self.markdown, self.trades, self.equity, self.metrics]


def trades_frame(result: BacktestResult) -> pd.DataFrame:
    """Closed trades with entry (strategy: why) and exit reasons, PnL and R multiple."""
    rows = []
    for t in result.trades:
        sig = result.signals.get(t.signal_id)
        r = r_multiple(t, sig)
        rows.append(
            {
                "symbol": t.symbol,
                "side": "long" if t.quantity > 0 else "short",
                "quantity": str(abs(t.quantity)),
                "entry_date": t.opened_at.date().isoformat(),
                "entry_price": str(t.entry_price),
                "exit_date": t.closed_at.date().isoformat(),
                "exit_price": str(t.exit_price),
                "pnl": str(t.pnl),
                "r_multiple": None if r is None else round(r, 4),
                "entry_reason": f"{sig.strategy}: {sig.reason}" if sig else "",
                "exit_reason": t.reason,
                "signal_id": t.signal_id,
            }
        )
    cols = [
        "symbol", "side", "quantity", "entry_date", "entry_price", "exit_date", "exit_price", "pnl",
        "r_multiple", "entry_reason", "exit_reason", "signal_id",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def days_frame(result: BacktestResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": d.day.isoformat(),
                "equity": round(d.equity, 6),
                "cash": round(d.cash, 6),
                "exposure": round(d.exposure, 6),
                "positions": d.positions,
                "regime": d.regime,
                "signals": d.signals,
                "opened": d.opened,
                "closed": d.closed,
            }
            for d in result.days
        ]
    )


def result_metrics(result: BacktestResult) -> dict[str, Any]:
    return compute_metrics(
        result.equity(),
        result.trades,
        result.signals,
        exposure=[d.exposure for d in result.days],
        traded_notional=result.fills_notional,
        fees=result.fees,
    )


def regime_labels(result: BacktestResult) -> list[str]:
    """One label per point of `result.equity()`: day one's return (the opening point → day one) is
    attributed to day one's regime, under which the book took its first positions."""
    labels = [d.regime for d in result.days]
    return labels[:1] + labels


def _charts(equity: pd.Series, exposure: pd.Series, monthly: pd.DataFrame) -> dict[str, str]:
    """The report's charts as inline SVG (`joe.backtest.charts`), by name."""
    out = {
        "equity": line_chart("Equity", equity.index, equity.to_numpy(), "#1f77b4", height=260),
        "drawdown": line_chart(
            "Drawdown (%)", equity.index, drawdown_series(equity).to_numpy() * 100, "#d62728", fill=True
        ),
        "exposure": line_chart(
            "Gross exposure (% of equity)", exposure.index, exposure.to_numpy() * 100, "#2ca02c"
        ),
    }
    if not monthly.empty:
        out["monthly"] = heat_map("Monthly returns (%)", monthly * 100)
    return out


def _fmt(v: Any) -> str:
    """A table cell: a float with 2 decimals and thousands separators (never scientific notation)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def money(v: Any) -> str:
    """An amount: thousands separators and 2 decimals (99,975.38)."""
    return "—" if v is None else f"{float(v):,.2f}"


def pct(v: Any, decimals: int = 2) -> str:
    """A fraction as a percentage (-0.0254 → -2.54%)."""
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v) * 100:,.{decimals}f}%"


PCT_KEYS = ("total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure")
MONEY_KEYS = ("starting_equity", "final_equity", "net_pnl", "fees", "avg_win", "avg_loss")
COUNT_KEYS = ("trades", "days", "max_drawdown_days", "max_drawdown_calendar_days")


def turnover_text(v: Any) -> str:
    """Turnover as shown: a multiple of the mean equity per year (`metrics.TURNOVER_UNIT`), e.g. 12.34×."""
    return f"{float(v):,.2f}×" if isinstance(v, int | float) and math.isfinite(v) else "—"


def cagr_text(metrics: dict[str, Any]) -> str:
    """CAGR as shown: a percentage, or "n/a (window < 1 month)" when the window is too short for one."""
    v = metrics.get("cagr")
    if v is None and metrics.get("cagr_note"):
        return CAGR_TOO_SHORT
    return pct(v) if isinstance(v, int | float) else "—"


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) per metric; a unit or a note is shown with its metric, not as a row of its own."""
    rows = []
    for k, v in metrics.items():
        if k in ("turnover_unit", "cagr_note"):
            continue
        if k == "turnover":
            rows.append((f"turnover ({metrics.get('turnover_unit') or TURNOVER_UNIT})", turnover_text(v)))
            continue
        if k == "cagr":
            rows.append((k, cagr_text(metrics)))
            continue
        if k in PCT_KEYS and isinstance(v, float):
            shown = pct(v)
        elif k in MONEY_KEYS and isinstance(v, int | float):
            shown = money(v)
        elif k in COUNT_KEYS and isinstance(v, int | float):
            shown = f"{int(v):,}"
        else:
            shown = _fmt(v)
        rows.append((k, shown))
    return rows


def _regime_rows(regimes: pd.DataFrame) -> pd.DataFrame:
    """The regime table as shown: returns and volatility as percentages."""
    shown = regimes.astype(object).copy()
    for col, decimals in (("return", 2), ("mean_daily", 3), ("volatility", 2)):
        shown[col] = [pct(v, decimals) for v in regimes[col]]
    return shown.rename(columns={"mean_daily": "mean daily"})


def _table_md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _table_html(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    result: BacktestResult,
    folder: Path,
    title: str,
    options: dict[str, Any],
    *,
    provenance: dict[str, Any] | None = None,
) -> tuple[BacktestPaths, dict[str, Any]]:
    """Write every file of the report into `folder` (created if missing); returns the paths and the
    metrics. `provenance` (`joe.backtest.runner.provenance`) goes into metrics.json as `reproduce`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = BacktestPaths(
        folder,
        folder / "report.html",
        folder / "report.md",
        folder / "trades.csv",
        folder / "equity.csv",
        folder / "metrics.json",
    )
    equity = result.equity()
    metrics = result_metrics(result)
    trades = trades_frame(result)
    days = days_frame(result)
    regimes = regime_breakdown(equity, regime_labels(result))
    monthly = monthly_returns(equity)
    trades.to_csv(paths.trades, index=False)
    days.to_csv(paths.equity, index=False)
    payload = {
        "title": title,
        "options": options,
        "metrics": metrics,
        "regimes": regimes.to_dict(orient="records"),
        "open_positions_at_end": result.open_positions,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "warnings": result.warnings,
    }
    if provenance is not None:
        payload["reproduce"] = provenance
    paths.metrics.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    metric_df = pd.DataFrame(_metric_rows(metrics), columns=["metric", "value"])
    regime_df = _regime_rows(regimes)
    trades_shown = trades.drop(columns=["signal_id"]).assign(pnl=[money(v) for v in trades["pnl"]])
    monthly_pct = (monthly * 100).round(2) if not monthly.empty else monthly
    if not monthly_pct.empty:
        monthly_pct.columns = list(MONTHS)
        monthly_pct.index.name = "year"
    md = [
        f"# {title}\n",
        "## Metrics\n",
        _table_md(metric_df),
        "## Returns per regime\n",
        _table_md(regime_df),
        "## Monthly returns (%)\n",
        _table_md(monthly_pct.reset_index()) if not monthly.empty else "_none_\n",
        f"## Trades ({len(trades)} closed, {result.open_positions} open at the end)\n",
        _table_md(trades_shown),
    ]
    if result.warnings:
        md += ["## Warnings\n", "\n".join(f"- {w}" for w in result.warnings) + "\n"]
    paths.markdown.write_text("\n".join(md), encoding="utf-8")
    exposure = pd.Series(
        [d.exposure for d in result.days], index=pd.DatetimeIndex([pd.Timestamp(d.day) for d in result.days])
    )
    charts = _charts(equity, exposure, monthly)
    imgs = "".join(f"<h2>{name.capitalize()}</h2><figure>{svg}</figure>" for name, svg in charts.items())
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "figure{margin:8px 0}figure svg{max-width:100%;height:auto}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Metrics</h2>{_table_html(metric_df)}{imgs}"
        f"<h2>Returns per regime</h2>{_table_html(regime_df)}"
        f"<h2>Trades ({len(trades)} closed, {result.open_positions} open at the end)</h2>"
        f"{_table_html(trades_shown)}"
        + (
            "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings) + "</ul>"
            if result.warnings
            else ""
        )
        + "</body></html>"
    )
    paths.html.write_text(page, encoding="utf-8")
    return paths, metrics
