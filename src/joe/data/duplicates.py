"""Rows a file repeats exactly - an overlapping append of daily downloads writes the same bars twice.

A bar repeated with the same time and the same values (open, high, low, close, volume: NaN equals NaN)
is the same bar: the repeats are dropped and `joe.data.files.read_file` names them in a
``duplicate_rows`` warning. Two *different* bars at one time still refuse the file (which one is true
cannot be known).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["drop_repeats"]


def drop_repeats(
    index: pd.DatetimeIndex, lines: np.ndarray, fields: dict[str, np.ndarray]
) -> tuple[pd.DatetimeIndex, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """For a time-sorted (stable) file: (index, lines, fields) without the exact repeats, and the file
    lines of the repeats dropped. A repeat is a row whose time and values equal the row before it."""
    same_time = np.zeros(len(index), dtype=bool)
    same_time[1:] = index.asi8[1:] == index.asi8[:-1]
    if not same_time.any():
        return index, lines, fields, lines[:0]
    same = same_time.copy()
    for v in fields.values():
        equal = np.zeros(len(v), dtype=bool)
        equal[1:] = (v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1]))
        same &= equal
    keep = ~same
    return index[keep], lines[keep], {k: v[keep] for k, v in fields.items()}, lines[same]
