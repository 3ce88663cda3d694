"""The backtest report's charts as inline SVG, drawn directly: equity, drawdown, exposure (a line over
time, one point per simulated day) and the monthly-returns heat map (one cell per month).

Four matplotlib figures cost about a second of a 10 s backtest budget (importing matplotlib about half
of it, rendering each figure to PNG the rest: issue 17 point 4); these charts are lines, rectangles and
text, which SVG says directly — the page stays self-contained and opens offline, and the text in it
stays text. Values are drawn as given (no smoothing); a missing value (NaN) breaks the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np
import pandas as pd

WIDTH = 900
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 30, 26  # margins in px: y labels, title, x labels
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FONT = "font-family='system-ui,sans-serif' font-size='12'"
# The heat map's diverging scale (ColorBrewer RdYlGn ends and middle): loss red, flat yellow, gain green.
RED, YELLOW, GREEN = (215, 48, 39), (255, 255, 191), (26, 152, 80)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    span = hi - lo
    # The step is the first round value at or above span / n, so at most 2.5 × span / n: at least
    # n / 2.5 (2 for n = 5) ticks fall inside (span / (n - 1) could leave one: [50] for 7.8 .. 98.7).
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{v:,.{decimals}f}"


def time_marks(index: pd.DatetimeIndex, most: int = 12) -> list[tuple[int, str]]:
    """The x axis's labelled rows: the first row of each year ("2021") when the index crosses at least
    two year ends, else the first row of each month ("2021-03", every k-th month so at most `most`
    labels), else (under a month) its first row's date — a chart of a backtest inside one year has dates
    under it too."""
    if not len(index):
        return []
    years = index.year.to_numpy()
    rows = np.flatnonzero(np.r_[False, years[1:] != years[:-1]])
    if len(rows) >= 2:
        return [(int(r), str(years[r])) for r in rows]
    months = years * 12 + index.month.to_numpy() - 1
    rows = np.flatnonzero(np.r_[False, months[1:] != months[:-1]])
    if not len(rows):
        return [(0, index[0].strftime("%Y-%m-%d"))]
    every = -(-len(rows) // most)  # ceil: 1, 2, 3 … months apart
    rows = rows[months[rows] % every == 0]
    return [(int(r), index[r].strftime("%Y-%m")) for r in rows]


def line_chart(
    title: str, index: pd.DatetimeIndex, values: Sequence[float] | np.ndarray, colour: str, *,
    height: int = 220, fill: bool = False,
) -> str:  # fmt: skip
    """An SVG line chart of `values` over `index` (x by time), titled `title`; `fill`: the area between
    the line and zero is shaded (the drawdown). Empty or all-NaN values: the frame and title only."""
    y = np.asarray(values, dtype=float)
    t = np.asarray(pd.DatetimeIndex(index).asi8, dtype=float)
    w, h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' width='{WIDTH}' "
        f"height='{height}' role='img' aria-label='{escape(title)}'>",
        f"<text x='{LEFT}' y='18' {FONT} font-weight='bold'>{escape(title)}</text>",
        f"<rect x='{LEFT}' y='{TOP}' width='{w}' height='{h}' fill='none' stroke='#bbb'/>",
    ]
    finite = np.isfinite(y)
    if finite.any() and len(t):
        lo, hi = float(y[finite].min()), float(y[finite].max())
        if fill:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi - lo < 1e-12:
            pad = abs(hi) * 0.01 or 1.0
            lo, hi = lo - pad, hi + pad
        t0, t1 = float(t[0]), float(t[-1])

        def px(k: np.ndarray) -> np.ndarray:
            return LEFT + (t[k] - t0) / (t1 - t0) * w if t1 > t0 else np.full(len(k), LEFT + w / 2)

        def py(v: float) -> float:
            return TOP + (hi - v) / (hi - lo) * h

        ticks = _ticks(lo, hi)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for v in ticks:
            yy = py(v)
            parts.append(f"<line x1='{LEFT}' x2='{LEFT + w}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='#eee'/>")
            parts.append(
                f"<text x='{LEFT - 6}' y='{yy + 4:.1f}' text-anchor='end' {FONT}>{_label(v, step)}</text>"
            )
        for row, text in time_marks(pd.DatetimeIndex(index)):
            xx = float(px(np.array([row]))[0])
            parts.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{TOP}' y2='{TOP + h}' stroke='#eee'/>")
            parts.append(f"<text x='{xx:.1f}' y='{height - 8}' text-anchor='middle' {FONT}>{text}</text>")
        # One polyline per run of finite values (a NaN breaks the line).
        edges = np.flatnonzero(np.diff(np.r_[0, finite.astype(np.int8), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            rows = np.arange(a, b)
            xs, ys = px(rows), TOP + (hi - y[rows]) / (hi - lo) * h
            pts = " ".join(f"{x:.1f},{v:.1f}" for x, v in zip(xs, ys, strict=True))
            if fill:
                zero = py(0.0)
                parts.append(
                    f"<polygon points='{xs[0]:.1f},{zero:.1f} {pts} {xs[-1]:.1f},{zero:.1f}' "
                    f"fill='{colour}' fill-opacity='0.5' stroke='none'/>"
                )
            else:
                parts.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='1.2'/>")
    parts.append("</svg>")
    return "".join(parts)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], f: float) -> str:
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def cell_colour(value: float, limit: float) -> str:
    """The heat map's colour of `value` on a scale of ±`limit`: red below zero, yellow at it, green above."""
    f = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
    return _mix(YELLOW, GREEN, f) if f >= 0 else _mix(YELLOW, RED, -f)


def heat_map(title: str, monthly_pct: pd.DataFrame) -> str:
    """An SVG heat map of monthly returns in % (rows: years, 12 columns: months; NaN: no cell), each
    cell coloured on one scale (± the largest move) and labelled with its value (one decimal)."""
    vals = monthly_pct.to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    limit = float(np.abs(finite).max()) if finite.size else 0.0
    cw, ch = (WIDTH - LEFT - RIGHT) / 12, 22
    height = TOP + 18 + ch * len(vals) + 8
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' width='{WIDTH}' "
        f"height='{height}' role='img' aria-label='{escape(title)}'>",
        f"<text x='{LEFT}' y='18' {FONT} font-weight='bold'>{escape(title)}</text>",
    ]
    for j, name in enumerate(MONTHS):
        parts.append(
            f"<text x='{LEFT + (j + 0.5) * cw:.1f}' y='{TOP + 12}' text-anchor='middle' {FONT}>{name}</text>"
        )
    for i, year in enumerate(monthly_pct.index):
        yy = TOP + 18 + i * ch
        label = escape(str(year))
        ty = yy + ch / 2 + 4
        parts.append(f"<text x='{LEFT - 6}' y='{ty:.1f}' text-anchor='end' {FONT}>{label}</text>")
        for j in range(vals.shape[1]):
            v = vals[i, j]
            if not np.isfinite(v):
                continue
            xx = LEFT + j * cw
            parts.append(
                f"<rect x='{xx:.1f}' y='{yy}' width='{cw:.1f}' height='{ch}' fill='{cell_colour(v, limit)}' "
                f"stroke='#fff'/><text x='{xx + cw / 2:.1f}' y='{yy + ch / 2 + 4:.1f}' text-anchor='middle' "
                f"{FONT}>{v:.1f}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["cell_colour", "heat_map", "line_chart", "time_marks"]
