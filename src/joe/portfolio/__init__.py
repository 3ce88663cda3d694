"""Portfolios behind one interface: Paper (here), Live and Shadow (with the execution layer)."""

from joe.portfolio.base import PortfolioManager, SignalOutcome, TrackRecordSummary
from joe.portfolio.exits import PriceBar
from joe.portfolio.ledger import ClosedTrade, LedgerError, PaperLedger, PaperPosition
from joe.portfolio.paper import PaperPortfolio

__all__ = [
    "ClosedTrade",
    "LedgerError",
    "PaperLedger",
    "PaperPortfolio",
    "PaperPosition",
    "PortfolioManager",
    "PriceBar",
    "SignalOutcome",
    "TrackRecordSummary",
]
