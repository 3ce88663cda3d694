"""The one error type of `joe.data`: bad input, unknown sources and impossible requests.

Messages are written for the person running Joe: they name the file, column or row at fault and
say what to do about it. They never carry a raw pandas traceback (the cause is chained instead).
"""

from __future__ import annotations


class DataError(Exception):
    """A market-data problem the user can fix (bad file, unknown symbol, unsupported timeframe...)."""
