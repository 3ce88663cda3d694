"""Reporting: run reports (Markdown, CSV, JSON, self-contained HTML), the AI analyst, alerts.

The names below are re-exported lazily (`joe.core.lazy`): importing a light submodule such as
`joe.reporting.context` does not load the HTML report's charts (matplotlib).
"""

from typing import TYPE_CHECKING

from joe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from joe.reporting.ai_analyst import AIAnalyst, build_prompt
    from joe.reporting.context import PositionFacts, RegimeFacts, ReportContext, ScoreFacts, SignalFacts
    from joe.reporting.generator import ReportGenerator, ReportPaths, find_report
    from joe.reporting.summary import AISummary, rule_based_summary
else:  # at run time (the type checker sees the imports above, and flags any other name)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "joe.reporting.ai_analyst": ["AIAnalyst", "build_prompt"],
            "joe.reporting.context": [
                "PositionFacts",
                "RegimeFacts",
                "ReportContext",
                "ScoreFacts",
                "SignalFacts",
            ],
            "joe.reporting.generator": ["ReportGenerator", "ReportPaths", "find_report"],
            "joe.reporting.summary": ["AISummary", "rule_based_summary"],
        },
    )

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
