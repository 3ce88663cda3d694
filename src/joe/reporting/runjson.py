"""`run.json`: the versioned, documented machine-readable report (schema "joe.report/1").

See docs/report-schema.md and report.schema.json next to this module. Decimals (prices,
quantities, money) are exact strings; ratios, scores and durations are JSON numbers.
Bump `REPORT_SCHEMA` on any incompatible change (removing/renaming/retyping a field).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from joe.reporting.context import ReportContext, SignalFacts
from joe.reporting.data_quality import input_to_json, quality_to_json
from joe.reporting.facts import _plain, dec, fill_to_json, iso, position_to_json
from joe.reporting.summary import AISummary

REPORT_SCHEMA = "joe.report/1"


def reward_risk(sf: SignalFacts) -> float | None:
    """Reward/risk ratio of a signal's geometry (distance to target / distance to stop)."""
    s = sf.signal
    risk = abs(s.entry - s.stop_loss)
    if risk == 0:
        return None
    return round(float(abs(s.take_profit - s.entry) / risk), 4)


def _signal(sf: SignalFacts) -> dict[str, Any]:
    s = sf.signal
    qty: Decimal | None = sf.quantity if sf.quantity is not None else s.quantity
    return {
        "signal_id": s.signal_id,
        "symbol": s.symbol,
        "strategy": s.strategy,
        "direction": s.direction.value,
        "entry": dec(s.entry),
        "stop_loss": dec(s.stop_loss),
        "take_profit": dec(s.take_profit),
        "trailing_distance": dec(s.trailing_distance),
        "reward_risk": reward_risk(sf),
        "confidence": float(s.confidence),
        "score": None if s.score is None else float(s.score),
        "reason": s.reason,
        "as_of": iso(s.as_of),
        "risk_grade": sf.risk_grade,
        "risk_dimensions": _plain(sf.risk_dimensions),
        "vetoed": sf.vetoed,
        "veto_reason": sf.veto_reason,
        "quantity": dec(qty),
        "execution": sf.execution,
    }


def _equity_curve(ctx: ReportContext) -> list[dict[str, Any]]:
    df = ctx.equity_curve
    if df.empty or not {"ts", "equity"}.issubset(df.columns):
        return []
    has_cash = "cash" in df.columns
    return [
        {
            "ts": _plain(row["ts"]),
            "equity": _plain(row["equity"]),
            "cash": _plain(row["cash"]) if has_cash else None,
        }
        for _, row in df.iterrows()
    ]


def build_run_json(
    ctx: ReportContext, ai: AISummary | None = None, generated_at: datetime | None = None
) -> dict[str, Any]:
    """The `run.json` document for a context (pure apart from `generated_at` defaulting to now)."""
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "run": {
            "run_id": ctx.run_id,
            "mode": ctx.mode,
            "broker": ctx.broker,
            "source": ctx.source,
            "source_description": ctx.source_description,
            "as_of": iso(ctx.as_of),
            "started_at": iso(ctx.started_at),
            "finished_at": iso(ctx.finished_at),
            "duration_s": round(ctx.duration_s, 3),
            "stage_timings": {k: round(float(v), 4) for k, v in ctx.stage_timings.items()},
            "price_sources": dict(sorted(ctx.price_sources.items())),
        },
        "regime": {
            "label": ctx.regime.label,
            "confidence": float(ctx.regime.confidence),
            "stressed": bool(ctx.regime.stressed),
            "evidence": _plain(ctx.regime.evidence),
            "inputs": [input_to_json(i) for i in ctx.regime_inputs],
        },
        "top_scores": [
            {
                "rank": i,
                "symbol": s.symbol,
                "name": s.name,
                "total": float(s.total),
                "components": _plain(s.components),
                "scans": list(s.scans),
            }
            for i, s in enumerate(ctx.top_scores, start=1)
        ],
        "signals": [_signal(sf) for sf in ctx.signals],
        "positions": [position_to_json(p) for p in ctx.positions],
        "fills": [fill_to_json(f) for f in ctx.fills],
        "account": {k: _plain(v) for k, v in ctx.account.items()},
        "equity_curve": _equity_curve(ctx),
        "warnings": list(ctx.warnings),
        "data_quality": quality_to_json(ctx.data_quality),
        "ai_summary": None
        if ai is None
        else {
            "source": ai.source,
            "model": ai.model,
            "error": ai.error,
            "file": "ai_summary.md",
        },
    }


def load_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of run.json, shipped beside this module."""
    text = resources.files("joe.reporting").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
