"""`AISummary` and the deterministic rule-based summary used whenever the AI is unavailable.

The rule-based text is built only from the run's facts, is identical for identical facts and
is always labelled as rule-based so nobody mistakes it for model output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from joe.reporting.context import ReportContext, SignalFacts

SummarySource = Literal["gemini", "rule-based"]


@dataclass(frozen=True, slots=True)
class AISummary:
    """A summary text and where it came from (`error` says why the AI was not used)."""

    text: str
    source: SummarySource
    model: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """The provenance line shown above the text in every output."""
        if self.source == "gemini":
            return f"AI-generated (Gemini {self.model})"
        return f"Rule-based summary (AI unavailable: {self.error or 'not configured'})"

    def to_markdown(self, title: str = "Run summary") -> str:
        """The `ai_summary.md` document: title, provenance label, text."""
        return f"# {title}\n\n> {self.label}\n\n{self.text.strip()}\n"


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.0f}%" if 0 <= x <= 1 else f"{x:.0f}"


def rule_based_summary(ctx: ReportContext, reason: str) -> AISummary:
    """A deterministic daily summary of the run's facts."""
    r = ctx.regime
    lines = [
        f"Run {ctx.run_id} ({ctx.mode} mode, {ctx.broker}, data: {ctx.source})"
        f" as of {ctx.as_of.isoformat()}.",
        f"Market regime: {r.label} (confidence {_fmt_pct(r.confidence)})"
        + (", STRESSED conditions." if r.stressed else "."),
    ]
    if ctx.top_scores:
        top = ", ".join(f"{s.symbol} {s.total:.0f}" for s in ctx.top_scores[:5])
        lines.append(f"Top scores: {top}.")
    active = ctx.active_signals
    vetoed = [s for s in ctx.signals if s.vetoed]
    if active:
        # Passing the risk stage is not trading: the RiskGate (market closed, limits), the book or the
        # broker may still refuse; each line says what happened, and the header how many opened.
        opened = sum(1 for sf in active if sf.opened)
        lines.append(f"{len(active)} signal(s) passed risk, {opened} opened:")
        lines += [f"- {_signal_line(sf)}" + (f" — {sf.execution}" if sf.execution else "") for sf in active]
    else:
        lines.append("No signal passed risk this run.")
    if vetoed:
        lines.append(
            f"{len(vetoed)} vetoed: "
            + ", ".join(f"{s.signal.symbol} ({s.veto_reason or 'risk'})" for s in vetoed)
            + "."
        )
    if ctx.positions:
        pnl = sum((p.unrealized_pnl for p in ctx.positions), Decimal(0))
        lines.append(f"{len(ctx.positions)} open position(s), unrealized P&L {pnl:,.2f}.")
    if ctx.fills:
        lines.append(f"{len(ctx.fills)} fill(s) this run.")
    if "equity" in ctx.account:
        lines.append(f"Account equity {ctx.account['equity']:,.2f}.")
    if ctx.warnings:
        lines.append("Warnings: " + "; ".join(ctx.warnings) + ".")
    return AISummary(text="\n".join(lines), source="rule-based", model=None, error=reason)


def _signal_line(sf: SignalFacts) -> str:
    s = sf.signal
    return (
        f"{s.direction.value} {s.symbol} ({s.strategy}) entry {s.entry}, stop {s.stop_loss}, "
        f"target {s.take_profit}, grade {sf.risk_grade}, confidence {_fmt_pct(s.confidence)}"
    )


def rule_based_trade_analysis(sf: SignalFacts, reason: str) -> AISummary:
    """A deterministic per-trade note: geometry, risk grade and the strategy's reason."""
    s = sf.signal
    risk = abs(s.entry - s.stop_loss)
    reward = abs(s.take_profit - s.entry)
    rr = f"{reward / risk:.2f}" if risk else "n/a"
    risk_pct = f"{risk / s.entry * 100:.2f}%" if s.entry else "n/a"
    lines = [
        _signal_line(sf) + ".",
        f"Risk per unit {risk} ({risk_pct} of entry), reward/risk {rr}.",
        f"Strategy reason: {s.reason}",
    ]
    if sf.risk_dimensions:
        dims = ", ".join(f"{k} {v:.2f}" for k, v in sorted(sf.risk_dimensions.items()))
        lines.append(f"Risk dimensions: {dims}.")
    if sf.vetoed:
        lines.append(f"Vetoed by risk: {sf.veto_reason or 'no reason given'}.")
    return AISummary(text="\n".join(lines), source="rule-based", model=None, error=reason)


@dataclass(frozen=True, slots=True)
class TradeNote:
    """The analysis of one opened trade (AI or rule-based) with the signal it is about."""

    signal: SignalFacts
    note: AISummary


def trade_notes_markdown(notes: Sequence[TradeNote], title: str) -> str:
    """The `ai_trades.md` document: one section per trade, each with its own provenance label."""
    parts = [f"# {title}\n"]
    if not notes:
        parts.append("No trades were opened in this run.\n")
    for tn in notes:
        s = tn.signal.signal
        parts.append(
            f"## {s.direction.value} {s.symbol} ({s.strategy}): {tn.signal.execution}\n\n"
            f"> {tn.note.label}\n\n{tn.note.text.strip()}\n"
        )
    return "\n".join(parts)
