"""Strategies, one module each, and the engine that matches them to the regime."""

from joe.analysis.strategies.base import Strategy, StrategyParams, build_signal
from joe.analysis.strategies.breakout import Breakout
from joe.analysis.strategies.engine import StrategyEngine, default_strategies
from joe.analysis.strategies.mean_reversion import MeanReversion
from joe.analysis.strategies.momentum import Momentum
from joe.analysis.strategies.trend_following import TrendFollowing

__all__ = [
    "Breakout",
    "MeanReversion",
    "Momentum",
    "Strategy",
    "StrategyEngine",
    "StrategyParams",
    "TrendFollowing",
    "build_signal",
    "default_strategies",
]
