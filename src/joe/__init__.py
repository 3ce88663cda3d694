"""Joe: market research and trading engine (paper by default)."""

__version__ = "0.1.0"
