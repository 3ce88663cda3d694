"""Analysis: pure, vectorised research — frames in, results out.

Regime → Scan → Score → Strategy → Risk; see `joe.analysis.pipeline.analyse`.
"""

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.pipeline import AnalysisResult, analyse
from joe.analysis.regime import Regime, RegimeConfig, RegimeDetector, RegimeLabel
from joe.analysis.risk import DimensionScore, RiskAssessment, RiskProfiler
from joe.analysis.scanner import SCANS, MarketScanner, ScanCandidate, ScanDefinition, ScanResult
from joe.analysis.scoring import InstrumentScore, ScoringEngine
from joe.analysis.strategies import StrategyEngine, StrategyParams

__all__ = [
    "SCANS",
    "AnalysisResult",
    "DimensionScore",
    "Features",
    "InstrumentScore",
    "MarketScanner",
    "Panel",
    "Regime",
    "RegimeConfig",
    "RegimeDetector",
    "RegimeLabel",
    "RiskAssessment",
    "RiskProfiler",
    "ScanCandidate",
    "ScanDefinition",
    "ScanResult",
    "ScoringEngine",
    "StrategyEngine",
    "StrategyParams",
    "analyse",
]
