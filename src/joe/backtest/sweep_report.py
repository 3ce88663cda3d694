"""A sweep's report folder: `sweep.csv` (every point), `heatmaps.html` (the metric per parameter pair,
averaged over the other parameters), and for walk-forward `walk_forward.csv` + `in_sample.csv`."""

from __future__ import annotations

import base64
import html
import io
import itertools
from pathlib import Path
from typing import Any

import pandas as pd

from joe.backtest.report import _table_html

# A heat map axis has at most this many rows or columns: a key with more distinct numbers (a random sweep's
# {low, high} draws are all distinct) is shown in this many equal-width ranges. One cell per draw made the
# figure draws × draws cells: 1,000 samples of two ranges asked matplotlib for ~20 GB, after every backtest.
MAX_LEVELS = 10


def _axis(values: pd.Series) -> pd.Series:
    """The key's values as heat map levels: as they are, or (many distinct numbers) their ranges."""
    if values.nunique(dropna=True) <= MAX_LEVELS:
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() < values.notna().sum():  # text or switches: as they are (a list's values)
        return values
    return pd.cut(numbers, bins=MAX_LEVELS)


def pair_tables(table: pd.DataFrame, keys: list[str], metric: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(row key, column key, mean metric pivot) for each pair of swept keys (one key: against itself); a key
    with more than `MAX_LEVELS` distinct numbers is binned into that many ranges."""
    cols = [f"param:{k}" for k in keys]
    data = table.copy()
    data[metric] = pd.to_numeric(data[metric], errors="coerce")
    for c in cols:
        data[c] = _axis(data[c])
    pairs = list(itertools.combinations(cols, 2)) or [(cols[0], cols[0])]
    out = []
    for a, b in pairs:
        if a == b:
            pivot = data.groupby(a, observed=True)[metric].mean().to_frame(metric).T
        else:
            pivot = data.pivot_table(index=a, columns=b, values=metric, aggfunc="mean", observed=True)
        out.append((a.removeprefix("param:"), b.removeprefix("param:"), pivot))
    return out


def _png(fig: Any) -> str:
    """A matplotlib figure as base64 PNG (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _heatmap(pivot: pd.DataFrame, ylabel: str, xlabel: str, metric: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = pivot.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 1.0 * vals.shape[1], 1.0 + 0.6 * vals.shape[0]))
    from joe.backtest.sweep import METRICS

    # Green is better: for a metric where less is better (`METRICS`) the scale is reversed.
    cmap = "RdYlGn_r" if METRICS.get(metric) == "min" else "RdYlGn"
    im = ax.imshow(vals, cmap=cmap, aspect="auto")
    ax.set_xticks(range(vals.shape[1]), [str(c) for c in pivot.columns])
    ax.set_yticks(range(vals.shape[0]), [str(i) for i in pivot.index])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if pd.notna(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=metric)
    return _png(fig)


def redact_table(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` with secrets masked as a single backtest's `metrics.json` masks its options: a
    swept value that is a registered secret (an environment credential) anywhere in its text, and every
    value of a parameter under a secret-looking key (`joe.audit.redaction`)."""
    from joe.audit.redaction import MASK, is_secret_field, redact

    out = table.copy()
    for col in out.columns:
        leaf = str(col).removeprefix("param:").rsplit(".", 1)[-1]
        if str(col).startswith("param:") and is_secret_field(leaf):
            out[col] = out[col].map(lambda v: v if v is None or v != v else MASK)
        elif not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(redact)
    return out


def write_sweep_report(
    folder: Path,
    table: pd.DataFrame,
    keys: list[str],
    metric: str,
    walk: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> list[Path]:
    """Write the sweep's files into `folder` (created); returns their paths. Secrets are masked in every
    file (`redact_table`), the heat maps' labels too."""
    table = redact_table(table)
    walk = (redact_table(walk[0]), redact_table(walk[1])) if walk is not None else None
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "sweep.csv", folder / "heatmaps.html"]
    table.to_csv(paths[0], index=False)
    parts = [f"<h1>Sweep: {html.escape(metric)} per parameter pair</h1>"]
    if walk is not None:
        all_in, best = walk
        all_in.to_csv(folder / "in_sample.csv", index=False)
        best.to_csv(folder / "walk_forward.csv", index=False)
        paths += [folder / "in_sample.csv", folder / "walk_forward.csv"]
        parts.append(f"<h2>Walk-forward: the best set per window, out of sample</h2>{_table_html(best)}")
    for a, b, pivot in pair_tables(table, keys, metric):
        if pivot.empty:
            continue
        img = _heatmap(pivot, a, b if a != b else "", metric)
        parts.append(f'<h2>{html.escape(a)} × {html.escape(b)}</h2><img src="data:image/png;base64,{img}">')
    parts.append(f"<h2>Every point</h2>{_table_html(table)}")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sweep</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 5px}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    paths[1].write_text(page, encoding="utf-8")
    return paths
