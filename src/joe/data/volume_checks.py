"""Volume checks of the data-quality stage (`joe.data.quality`): a volume column that is no volume
(``volume_unknown``), and bars without a volume in a series that has one (``volume_missing``)."""

from __future__ import annotations

import numpy as np

from joe.data.wicks import Add, RowsText

__all__ = ["volume_gaps", "zero_volume"]


def zero_volume(volume: np.ndarray, bars: np.ndarray) -> dict[int, int]:
    """Columns whose volume is positive on at most half of their `bars` while some bar has a (zero)
    volume: their volume is set to NaN in place; returns column -> number of bars without a volume."""
    with np.errstate(invalid="ignore"):
        positive = (np.isfinite(volume) & (volume > 0) & bars).sum(axis=0)
    written = (np.isfinite(volume) & bars).any(axis=0)
    n = bars.sum(axis=0)
    out: dict[int, int] = {}
    for j in map(int, np.flatnonzero(written & (n > 0) & (positive * 2 <= n))):
        volume[:, j] = np.nan
        out[j] = int(n[j] - positive[j])
    return out


def volume_gaps(
    v: np.ndarray, valid: np.ndarray, last: int, j: int, add: Add, rows_text: RowsText, keep: np.ndarray
) -> None:
    """Bars with a missing (NaN) or zero volume in a series that has volume: the last bar's is an error
    (the decision bar's relative volume and liquidity would read 0 - an incomplete or halted bar), any
    other's a warning listing the rows."""
    gaps = valid & ~(np.isfinite(v) & (v > 0))
    if not gaps.any() or gaps.sum() * 2 > valid.sum():  # mostly without volume: `volume_unknown`'s case
        return
    rows = np.flatnonzero(gaps)
    if gaps[last]:
        keep[j] = False
        add(
            j,
            "error",
            "volume_missing",
            f"the last bar (the as-of date) has {'no' if not np.isfinite(v[last]) else 'zero'} volume while "
            f"the series has volume: an incomplete or halted bar, whose volume score and liquidity would "
            f"read 0. The symbol is excluded - complete the bar or delete it",
            last,
        )
        rows = rows[:-1]
    if rows.size:
        add(
            j,
            "warning",
            "volume_missing",
            f"{rows.size} bar(s) with a missing or zero volume "
            f"({rows_text(rows, j)}); volume medians skip them",
            int(rows[0]),
        )
