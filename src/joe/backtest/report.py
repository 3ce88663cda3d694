"""A backtest's report folder, `data/backtests/<id>/`:

* `report.html` — self-contained (charts inlined as SVG, `joe.backtest.charts`): equity, drawdown,
  monthly returns heat map, exposure, the regime breakdown and the trade list with entry and exit reasons;
* `report.md` — the same numbers as text;
* `trades.csv` — one row per closed trade; `equity.csv` — one row per day;
* `metrics.json` — every metric (`joe.backtest.metrics`), the options and the regime breakdown.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from joe.backtest.charts import heat_map, line_chart
from joe.backtest.engine import BacktestResult
from joe.backtest.metrics import (
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
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


PCT_KEYS = ("total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure")


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for k, v in metrics.items():
        shown = f"{v * 100:.2f}%" if k in PCT_KEYS and isinstance(v, float) else _fmt(v)
        rows.append((k, shown))
    return rows


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
    result: BacktestResult, folder: Path, title: str, options: dict[str, Any]
) -> tuple[BacktestPaths, dict[str, Any]]:
    """Write every file of the report into `folder` (created); returns the paths and the metrics."""
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
    regimes = regime_breakdown(equity, [d.regime for d in result.days])
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
    paths.metrics.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    metric_df = pd.DataFrame(_metric_rows(metrics), columns=["metric", "value"])
    monthly_pct = (monthly * 100).round(2) if not monthly.empty else monthly
    if not monthly_pct.empty:
        monthly_pct.columns = list(MONTHS)
        monthly_pct.index.name = "year"
    md = [
        f"# {title}\n",
        "## Metrics\n",
        _table_md(metric_df),
        "## Returns per regime\n",
        _table_md(regimes),
        "## Monthly returns (%)\n",
        _table_md(monthly_pct.reset_index()) if not monthly.empty else "_none_\n",
        f"## Trades ({len(trades)} closed, {result.open_positions} open at the end)\n",
        _table_md(trades.drop(columns=["signal_id"])),
    ]
    if result.warnings:
        md += ["## Warnings\n", "\n".join(f"- {w}" for w in result.warnings) + "\n"]
    paths.markdown.write_text("\n".join(md), encoding="utf-8")
    charts = _charts(equity, days.set_index(equity.index)["exposure"] if len(days) else equity * 0, monthly)
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
        f"<h2>Returns per regime</h2>{_table_html(regimes)}"
        f"<h2>Trades ({len(trades)} closed, {result.open_positions} open at the end)</h2>"
        f"{_table_html(trades.drop(columns=['signal_id']))}"
        + (
            "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings) + "</ul>"
            if result.warnings
            else ""
        )
        + "</body></html>"
    )
    paths.html.write_text(page, encoding="utf-8")
    return paths, metrics
