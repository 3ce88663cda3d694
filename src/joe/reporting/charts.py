"""Small matplotlib charts rendered to inline SVG strings for the self-contained HTML report.

No pyplot: each chart is a standalone `Figure` (thread-safe, no global state) saved as SVG
with text kept as text (`svg.fonttype = none`), which keeps the page small. Each chart gets
its own `svg.hashsalt`, so the ids inside inline SVGs are stable and never collide.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from joe.core.models import Direction
from joe.reporting.context import SignalFacts

# Regime labels as the detector names them; anything else gets a neutral palette colour.
_REGIME_COLOURS = {
    "bull": "#2e7d32",
    "risk_on": "#2e7d32",
    "trending_up": "#2e7d32",
    "uptrend": "#2e7d32",
    "bear": "#c62828",
    "risk_off": "#c62828",
    "trending_down": "#c62828",
    "downtrend": "#c62828",
    "crisis": "#6a1b9a",
    "stressed": "#6a1b9a",
    "high_volatility": "#ef6c00",
    "volatile": "#ef6c00",
    "neutral": "#9e9e9e",
    "sideways": "#9e9e9e",
    "range": "#9e9e9e",
    "ranging": "#9e9e9e",
}
_PALETTE = ("#1565c0", "#00838f", "#8d6e63", "#5d4037", "#afb42b", "#d81b60")


def regime_colour(label: str, _fallback: dict[str, str] | None = None) -> str:
    """The band colour for a regime label (case- and separator-insensitive)."""
    key = label.strip().lower().replace(" ", "_").replace("-", "_")
    if key in _REGIME_COLOURS:
        return _REGIME_COLOURS[key]
    for known, colour in _REGIME_COLOURS.items():
        if known in key:
            return colour
    return _PALETTE[sum(map(ord, key)) % len(_PALETTE)]


def _to_svg(fig: Figure, salt: str) -> str:
    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    # Drop the XML prolog/DOCTYPE: the markup is inlined into an HTML5 document.
    return text[text.index("<svg") :]


def _style(ax: Axes) -> None:
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7)


def _segments(labels: pd.Series) -> Iterator[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """Contiguous runs of equal labels as (start, end, label)."""
    idx = labels.index
    start = 0
    for key, group in itertools.groupby(range(len(labels)), key=lambda i: labels.iloc[i]):
        n = len(list(group))
        end = min(start + n, len(idx) - 1)
        yield idx[start], idx[end], str(key)
        start += n


def regime_chart(history: pd.DataFrame, salt: str = "regime", index_name: str = "S&P 500") -> str:
    """The index (`index_name`: what `spx_close` really is) and VIX with the regime label as coloured
    bands; "" when there is no history."""
    if history.empty or "spx_close" not in history.columns:
        return ""
    has_vix = "vix_close" in history.columns and history["vix_close"].notna().any()
    fig = Figure(figsize=(8.0, 3.6 if has_vix else 2.6))
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1]) if has_vix else [fig.subplots()]
    ax = axes[0]
    ax.plot(
        history.index, history["spx_close"].astype(float), color="#0d47a1", linewidth=1.0, label=index_name
    )
    ax.set_ylabel(index_name, fontsize=8)
    if has_vix:
        axes[1].plot(history.index, history["vix_close"].astype(float), color="#bf360c", linewidth=0.8)
        axes[1].set_ylabel("VIX", fontsize=8)
    seen: dict[str, str] = {}
    if "label" in history.columns:
        labels = history["label"].fillna("unknown").astype(str)
        for start, end, label in _segments(labels):
            colour = regime_colour(label)
            seen.setdefault(label, colour)
            for a in axes:
                a.axvspan(start, end, color=colour, alpha=0.13, linewidth=0)
    for a in axes:
        _style(a)
    if seen:
        from matplotlib.patches import Patch

        handles = [Patch(color=c, alpha=0.35, label=lbl) for lbl, c in seen.items()]
        ax.legend(handles=handles, fontsize=7, loc="upper left", ncols=min(len(handles), 5), frameon=False)
    fig.autofmt_xdate(rotation=0, ha="center")
    return _to_svg(fig, salt)


def signal_chart(sf: SignalFacts, salt: str) -> str:
    """Recent closes with high/low range and entry, stop and target lines; "" without bars."""
    df = sf.price_history
    if df.empty or "close" not in df.columns:
        return ""
    s = sf.signal
    fig = Figure(figsize=(4.2, 2.0))
    ax = fig.subplots()
    x = df.index
    if {"high", "low"}.issubset(df.columns):
        ax.fill_between(
            x, df["low"].astype(float), df["high"].astype(float), color="#90a4ae", alpha=0.35, linewidth=0
        )
    ax.plot(x, df["close"].astype(float), color="#263238", linewidth=0.9)
    target_colour = "#2e7d32"
    stop_colour = "#c62828"
    for price, colour, name in (
        (s.entry, "#1565c0", "entry"),
        (s.stop_loss, stop_colour, "stop"),
        (s.take_profit, target_colour, "target"),
    ):
        ax.axhline(float(price), color=colour, linewidth=0.9, linestyle="--")
        ax.annotate(
            f"{name} {price}",
            xy=(1.0, float(price)),
            xycoords=("axes fraction", "data"),
            fontsize=6.5,
            color=colour,
            va="center",
            ha="left",
            xytext=(3, 0),
            textcoords="offset points",
        )
    marker = "^" if s.direction is Direction.LONG else "v"
    ax.plot([x[-1]], [float(s.entry)], marker=marker, color="#1565c0", markersize=6)
    ax.set_title(f"{s.symbol} · {s.direction.value} · {s.strategy}", fontsize=8, loc="left")
    _style(ax)
    fig.autofmt_xdate(rotation=0, ha="center")
    return _to_svg(fig, salt)


# Points further apart than this are not joined by a line: nothing is known about the time between.
MAX_JOIN_GAP = pd.Timedelta(days=7)


def break_gaps(curve: pd.DataFrame, max_gap: pd.Timedelta = MAX_JOIN_GAP) -> pd.DataFrame:
    """`curve` sorted by `ts`, with an all-NaN row inserted inside every gap wider than `max_gap`
    (matplotlib does not draw a line through NaN)."""
    c = curve.assign(ts=pd.to_datetime(curve["ts"])).sort_values("ts").reset_index(drop=True)
    gaps = c["ts"].diff() > max_gap
    if not gaps.any():
        return c
    fillers = c.loc[gaps, ["ts"]].copy()
    fillers["ts"] = fillers["ts"] - pd.Timedelta(seconds=1)
    return pd.concat([c, fillers]).sort_values("ts", kind="stable").reset_index(drop=True)


def equity_chart(curve: pd.DataFrame, salt: str = "equity") -> str:
    """Equity (and cash) over time; "" when the curve is empty. Runs far apart are separate segments."""
    if curve.empty or not {"ts", "equity"}.issubset(curve.columns):
        return ""
    curve = break_gaps(curve)
    fig = Figure(figsize=(8.0, 2.2))
    ax = fig.subplots()
    ts = pd.to_datetime(curve["ts"])
    # Isolated points (one run, or runs far apart) would otherwise be invisible.
    marker = "o" if curve["equity"].notna().sum() < 3 or curve["equity"].isna().any() else None
    ax.plot(ts, curve["equity"].astype(float), color="#1b5e20", linewidth=1.1, marker=marker, label="equity")
    if "cash" in curve.columns:
        ax.plot(
            ts,
            curve["cash"].astype(float),
            color="#78909c",
            linewidth=0.8,
            linestyle=":",
            marker=marker,
            label="cash",
        )
    if ts.nunique() < 2:
        t = ts.iloc[0]
        ax.set_xlim(t - pd.Timedelta(days=7), t + pd.Timedelta(days=7))
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    _style(ax)
    fig.autofmt_xdate(rotation=0, ha="center")
    return _to_svg(fig, salt)
