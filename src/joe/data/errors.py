"""The one error type of `joe.data`: bad input, unknown sources and impossible requests.

Messages are written for the person running Joe: they name the file, column or row at fault and
say what to do about it. They never carry a raw pandas traceback (the cause is chained instead).
"""

from __future__ import annotations


class DataError(Exception):
    """A market-data problem the user can fix (bad file, unknown symbol, unsupported timeframe...).

    `row` / `date`: the file line (1-based, header = 1) and the date (ISO) of the bar at fault, when a
    file is refused for one dated row (`joe.data.files.read_file`); the finding it becomes is dated
    there, so a backtest replays the days before it on the file cut before that row."""

    row: int | None = None
    date: str | None = None


class InsufficientHistory(DataError, ValueError):
    """Too few bars for a calculation that needs a minimum history (e.g. the regime's ~200 index bars).

    Also a `ValueError`, which is what callers that only compute caught before it had a name."""
