"""The one error type of `joe.data`: bad input, unknown sources and impossible requests.

Messages are written for the person running Joe: they name the file, column or row at fault and
say what to do about it. They never carry a raw pandas traceback (the cause is chained instead).
"""

from __future__ import annotations


class DataError(Exception):
    """A market-data problem the user can fix (bad file, unknown symbol, unsupported timeframe...)."""


class InsufficientHistory(DataError, ValueError):
    """Too few bars for a calculation that needs a minimum history (e.g. the regime's ~200 index bars).

    Also a `ValueError`, which is what callers that only compute caught before it had a name."""
