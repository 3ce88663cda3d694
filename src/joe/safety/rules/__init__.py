"""The `RiskGate`'s rules, one question each, in the order they run (cheapest and hardest first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joe.safety.rules.account import DailyLossLimit, MarginWhatIf, MaxDrawdown, OrderRate
from joe.safety.rules.exposure import CorrelatedExposure, MaxOpenPositions, SymbolExposure, TotalExposure
from joe.safety.rules.order import MarketClosed, MaxOrderNotional, MaxOrderQuantity, PriceBand, StaleQuote
from joe.safety.rules.protection import ProtectionLocks

if TYPE_CHECKING:
    from joe.safety.risk_gate import Rule


def default_rules() -> list[Rule]:
    """Every rule, in order."""
    return [
        MaxOrderQuantity(),
        MaxOrderNotional(),
        StaleQuote(),
        PriceBand(),
        MarketClosed(),
        ProtectionLocks(),
        DailyLossLimit(),
        MaxDrawdown(),
        OrderRate(),
        MaxOpenPositions(),
        SymbolExposure(),
        TotalExposure(),
        CorrelatedExposure(),
        MarginWhatIf(),
    ]


__all__ = [
    "CorrelatedExposure",
    "DailyLossLimit",
    "MarginWhatIf",
    "MarketClosed",
    "MaxDrawdown",
    "MaxOpenPositions",
    "MaxOrderNotional",
    "MaxOrderQuantity",
    "OrderRate",
    "PriceBand",
    "ProtectionLocks",
    "StaleQuote",
    "SymbolExposure",
    "TotalExposure",
    "default_rules",
]
