"""`report.md`: the run as plain Markdown (readable in a terminal, a PR or a chat)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from joe.reporting.context import ReportContext
from joe.reporting.data_quality import markdown_lines
from joe.reporting.facts import plain_decimal
from joe.reporting.runjson import reward_risk
from joe.reporting.summary import AISummary


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, newlines flattened)."""
    if isinstance(value, Decimal):
        value = plain_decimal(value)
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return out


def evidence_value(v: float) -> str:
    """A regime evidence number as people write it: 2,506.85, 0.0123, 18.2 (never 2.51e+03)."""
    if abs(v) >= 100:
        return f"{v:,.2f}"
    if abs(v) >= 1:
        return f"{v:.3f}".rstrip("0").rstrip(".")
    out = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if out in ("", "-0") else out


def render_markdown(ctx: ReportContext, ai: AISummary | None = None) -> str:
    """The Markdown report."""
    r = ctx.regime
    lines = [
        f"# Joe report {ctx.as_of.isoformat()} ({ctx.mode.upper()})",
        "",
        f"- Run: `{ctx.run_id}`",
        f"- Mode: {ctx.mode} · Broker: {ctx.broker}",
        f"- Data source: {ctx.source} — {ctx.source_description}",
        f"- Started {ctx.started_at.isoformat()} · finished {ctx.finished_at.isoformat()}"
        f" · {ctx.duration_s:.2f} s",
        *[f"- Prices from {src}: {', '.join(syms)}" for src, syms in ctx.price_source_groups()],
        "",
    ]
    if ctx.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in ctx.warnings], ""]
    if ai is not None:
        lines += ["## Summary", "", f"> {ai.label}", "", ai.text.strip(), ""]
    lines += [
        f"## Market regime: {r.label}",
        "",
        f"Confidence {r.confidence:.0%}" + (" — **stressed**" if r.stressed else ""),
        "",
    ]
    evidence = [(k, evidence_value(v)) for k, v in r.evidence.items() if math.isfinite(v)]
    if evidence:
        lines += [*_table(["Evidence", "Value"], evidence), ""]
    lines += markdown_lines(ctx)
    lines += ["## Signals", ""]
    if ctx.signals:
        rows = []
        for sf in ctx.signals:
            s = sf.signal
            rr = reward_risk(sf)
            qty = sf.quantity if sf.quantity is not None else s.quantity
            status = f"vetoed: {sf.veto_reason or 'risk'}" if sf.vetoed else "accepted"
            if sf.execution and not sf.vetoed:
                status += f"; {sf.execution}"
            rows.append(
                (
                    s.symbol,
                    s.direction.value,
                    s.strategy,
                    s.entry,
                    s.stop_loss,
                    s.take_profit,
                    "" if rr is None else f"{rr:.2f}",
                    sf.risk_grade,
                    f"{s.confidence:.0%}",
                    "" if qty is None else qty,
                    status,
                )
            )
        lines += _table(
            [
                "Symbol",
                "Dir",
                "Strategy",
                "Entry",
                "Stop",
                "Target",
                "R:R",
                "Grade",
                "Conf.",
                "Qty",
                "Status",
            ],
            rows,
        )
    else:
        lines.append("No signals this run.")
    lines += ["", "## Top scored instruments", ""]
    if ctx.top_scores:
        lines += _table(
            ["#", "Symbol", "Name", "Score", "Scans"],
            [
                (i, s.symbol, s.name, f"{s.total:.1f}", ", ".join(s.scans))
                for i, s in enumerate(ctx.top_scores, start=1)
            ],
        )
    else:
        lines.append("No instrument was scored.")
    lines += ["", "## Positions", ""]
    if ctx.positions:
        lines += _table(
            ["Symbol", "Dir", "Qty", "Avg", "Market", "Marked", "Unrealized P&L", "Stop", "Target"],
            [
                (
                    p.symbol,
                    p.direction.value,
                    p.quantity,
                    p.avg_price,
                    p.market_price or "",
                    p.marked_at.date().isoformat() if p.marked_at else "",
                    p.unrealized_pnl,
                    p.stop_loss or "",
                    p.take_profit or "",
                )
                for p in ctx.positions
            ],
        )
    else:
        lines.append("No open positions.")
    if ctx.fills:
        lines += ["", "## Fills", ""]
        lines += _table(
            ["Time", "Symbol", "Side", "Qty", "Price", "Commission"],
            [
                (f.ts.isoformat(), f.symbol, f.side.value, f.quantity, f.price, f.commission)
                for f in ctx.fills
            ],
        )
    if ctx.account:
        lines += ["", "## Account", ""]
        lines += _table(["Item", "Value"], [(k, f"{v:,.2f}") for k, v in ctx.account.items()])
    if ctx.stage_timings:
        lines += ["", "## Stage timings", ""]
        lines += _table(["Stage", "Seconds"], [(k, f"{v:.3f}") for k, v in ctx.stage_timings.items()])
    return "\n".join(lines) + "\n"
