"""Reporting: run reports (Markdown, CSV, JSON, self-contained HTML), the AI analyst, alerts."""

from joe.reporting.ai_analyst import AIAnalyst, build_prompt
from joe.reporting.context import PositionFacts, RegimeFacts, ReportContext, ScoreFacts, SignalFacts
from joe.reporting.generator import ReportGenerator, ReportPaths, find_report
from joe.reporting.summary import AISummary, rule_based_summary

__all__ = [
    "AIAnalyst",
    "AISummary",
    "PositionFacts",
    "RegimeFacts",
    "ReportContext",
    "ReportGenerator",
    "ReportPaths",
    "ScoreFacts",
    "SignalFacts",
    "build_prompt",
    "find_report",
    "rule_based_summary",
]
