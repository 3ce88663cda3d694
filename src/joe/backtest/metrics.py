"""A backtest's metrics: return and risk from `empyrical` (empyrical-reloaded), trade statistics by hand.

The equity curve starts with the starting equity at the close before the first trading day (a
backtest: the configured paper starting cash, at the data's previous close), then one point per trading
day's close; so a curve of N + 1 points covers N trading days (`days`, from `start` to `end`), and day
one's fills and costs are its first return. Return metrics use the daily returns of that curve and 252
periods a year, the convention of empyrical, pyfolio and quantstats:

* CAGR — `empyrical.annual_return` (geometric: (final / initial) ** (252 / days) − 1); over fewer than
  `MIN_CAGR_DAYS` (21 trading days, one month) it is None and `cagr_note` says why: a day's return
  raised to the 252nd power is a number, not a growth rate
* volatility — `empyrical.annual_volatility` (sample std of daily returns × √252)
* Sharpe — `empyrical.sharpe_ratio` (risk-free 0), Sortino — `empyrical.sortino_ratio` (target 0)
* max drawdown — `empyrical.max_drawdown` (a negative fraction); its duration (peak → recovery, or
  → the end when never recovered) in trading days and calendar days is computed here.

Trade statistics (closed round trips, net of both commissions):
win rate = wins / trades; profit factor = gross profit / gross loss (None with no losing trade);
R multiple = PnL / initial risk, the risk being |entry − initial stop| × quantity (Van Tharp);
turnover = traded notional (entries and exits) / mean equity, per year (a multiple of the mean equity
a year; `turnover_unit` says so in metrics.json); exposure = mean of the daily gross position value /
equity; fees = every commission paid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pandas as pd

from joe.core.models import Signal
from joe.portfolio.ledger import ClosedTrade

PERIODS_PER_YEAR = 252
# The shortest window (trading days) whose CAGR is reported: shorter, the annualised figure is noise.
MIN_CAGR_DAYS = 21
CAGR_TOO_SHORT = "n/a (window < 1 month)"
TURNOVER_UNIT = "traded notional (entries + exits) / mean equity, per year"


def _num(x: object) -> float | None:
    """A JSON-safe float (None for NaN/inf)."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class DrawdownSpell:
    """The deepest drawdown: depth (negative fraction), peak, trough, recovery (None: not recovered)."""

    depth: float
    peak: pd.Timestamp
    trough: pd.Timestamp
    recovery: pd.Timestamp | None
    trading_days: int
    calendar_days: int


def library() -> ModuleType:
    """`empyrical`, imported on first use, not with this module: it loads scipy.stats (~1 s), which only
    the metrics need (a backtest imports it while its analysis worker computes the first day)."""
    import empyrical

    return empyrical


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Fractional distance below the running peak at each point (0 at a high, negative below)."""
    peak = equity.cummax()
    return equity / peak - 1.0


def max_drawdown_spell(equity: pd.Series) -> DrawdownSpell | None:
    """The deepest drawdown and how long it lasted (None for an empty or never-falling curve)."""
    if len(equity) < 2:
        return None
    dd = drawdown_series(equity)
    trough_i = int(np.argmin(dd.to_numpy()))
    if dd.iloc[trough_i] >= 0:
        return None
    peak_i = int(np.argmax(equity.to_numpy()[: trough_i + 1]))
    after = np.flatnonzero(equity.to_numpy()[trough_i:] >= equity.iloc[peak_i])
    rec_i = trough_i + int(after[0]) if len(after) else None
    end_i = rec_i if rec_i is not None else len(equity) - 1
    idx = equity.index
    return DrawdownSpell(
        float(dd.iloc[trough_i]),
        idx[peak_i],
        idx[trough_i],
        idx[rec_i] if rec_i is not None else None,
        end_i - peak_i,
        int((idx[end_i] - idx[peak_i]).days),
    )


def r_multiple(trade: ClosedTrade, signal: Signal | None) -> float | None:
    """PnL in units of the initial risk (|signal entry − initial stop| × quantity); None if unknown."""
    if signal is None:
        return None
    risk = abs(signal.entry - signal.stop_loss) * abs(trade.quantity)
    return float(trade.pnl / risk) if risk > 0 else None


def trade_stats(trades: Sequence[ClosedTrade], signals: Mapping[str, Signal]) -> dict[str, float | None]:
    """Win rate, profit factor, average R, average win/loss over closed trades."""
    pnl = [float(t.pnl) for t in trades]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    rs = [r for t in trades if (r := r_multiple(t, signals.get(t.signal_id))) is not None]
    return {
        "trades": float(len(trades)),
        "win_rate": len(wins) / len(pnl) if pnl else None,
        "profit_factor": (sum(wins) / -sum(losses)) if losses else None,
        "avg_r_multiple": float(np.mean(rs)) if rs else None,
        "avg_win": float(np.mean(wins)) if wins else None,
        "avg_loss": float(np.mean(losses)) if losses else None,
        "net_pnl": float(sum(pnl)),
    }


def cagr_note(days: int) -> str:
    """Why a window of `days` trading days has no CAGR (`MIN_CAGR_DAYS`), for metrics.json."""
    return f"{CAGR_TOO_SHORT}: {days} trading day(s), a CAGR needs at least {MIN_CAGR_DAYS}"


def compute_metrics(
    equity: pd.Series,
    trades: Sequence[ClosedTrade],
    signals: Mapping[str, Signal],
    *,
    exposure: Sequence[float] = (),
    traded_notional: float = 0.0,
    fees: float = 0.0,
) -> dict[str, float | int | str | None]:
    """Every metric of the report, JSON-ready (NaN → None). `equity` is daily, UTC-dated: the starting
    equity at the close before the first trading day, then each trading day's close (module docstring).
    `exposure` has one value per trading day; `traded_notional` and `fees` are in the account currency.
    Fractions are plain (0.05 = 5%); `turnover` is a multiple of the mean equity per year (`turnover_unit`);
    `cagr` is None below `MIN_CAGR_DAYS` days, with `cagr_note` saying why (else `cagr_note` is None)."""
    ep = library()

    returns = equity.pct_change().dropna()
    years = len(returns) / PERIODS_PER_YEAR
    spell = max_drawdown_spell(equity)
    out: dict[str, float | int | str | None] = {
        "start": str(equity.index[1].date()) if len(equity) > 1 else None,
        "end": str(equity.index[-1].date()) if len(equity) > 1 else None,
        "days": max(len(equity) - 1, 0),
        "starting_equity_at": str(equity.index[0].date()) if len(equity) else None,
        "starting_equity": _num(equity.iloc[0]) if len(equity) else None,
        "final_equity": _num(equity.iloc[-1]) if len(equity) else None,
        "total_return": _num(equity.iloc[-1] / equity.iloc[0] - 1.0) if len(equity) else None,
        "cagr": _num(ep.annual_return(returns, period="daily")) if len(returns) >= MIN_CAGR_DAYS else None,
        "cagr_note": None if len(returns) >= MIN_CAGR_DAYS else cagr_note(len(returns)),
        "volatility": _num(ep.annual_volatility(returns, period="daily")) if len(returns) > 1 else None,
        "sharpe": _num(ep.sharpe_ratio(returns, period="daily")) if len(returns) > 1 else None,
        "sortino": _num(ep.sortino_ratio(returns, period="daily")) if len(returns) > 1 else None,
        "max_drawdown": _num(ep.max_drawdown(returns)) if len(returns) else None,
        "max_drawdown_days": spell.trading_days if spell else 0,
        "max_drawdown_calendar_days": spell.calendar_days if spell else 0,
        "max_drawdown_peak": str(spell.peak.date()) if spell else None,
        "max_drawdown_trough": str(spell.trough.date()) if spell else None,
        "max_drawdown_recovered": (str(spell.recovery.date()) if spell.recovery is not None else None)
        if spell
        else None,
        "exposure": _num(np.mean(exposure)) if len(exposure) else None,
        "turnover": _num(traded_notional / float(equity.mean()) / years)
        if years > 0 and len(equity)
        else None,
        "turnover_unit": TURNOVER_UNIT,
        "fees": _num(fees),
    }
    out.update(trade_stats(trades, signals))
    return out


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded returns per calendar month, years × months (1..12) (`empyrical.aggregate_returns`)."""
    ep = library()

    returns = equity.pct_change().dropna()
    if returns.empty:
        return pd.DataFrame()
    agg = ep.aggregate_returns(returns, "monthly")
    table = agg.unstack()
    return table.reindex(columns=range(1, 13))


def regime_breakdown(equity: pd.Series, regimes: Sequence[str]) -> pd.DataFrame:
    """Return per regime label: days, compounded return, mean daily return, annualised volatility.

    `regimes` has one label per point of `equity` (its first, the starting point's, is the label day
    one's return is attributed to). A day's return is attributed to the regime detected at the previous
    close (the regime the book was positioned under).
    """
    rets = equity.pct_change()
    frame = pd.DataFrame({"ret": rets.to_numpy(), "regime": pd.Series(list(regimes)).shift(1).to_numpy()})
    frame = frame.dropna()
    rows = []
    for label, g in frame.groupby("regime", sort=True):
        r = g["ret"].astype(float)
        rows.append(
            {
                "regime": label,
                "days": len(r),
                "return": float(np.prod(1 + r) - 1),
                "mean_daily": float(r.mean()),
                "volatility": float(r.std(ddof=1) * math.sqrt(PERIODS_PER_YEAR)) if len(r) > 1 else None,
            }
        )
    return pd.DataFrame(rows, columns=["regime", "days", "return", "mean_daily", "volatility"])
