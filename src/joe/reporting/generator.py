"""`ReportGenerator`: writes one directory per run under data/reports/<run_id>/.

Files: report.md, report.html (self-contained), run.json (schema joe.report/1), signals.csv,
positions.csv, scores.csv, ai_summary.md, ai_trades.md (a note per opened trade, when the run
asked for them), and facts.json (the full context, so `joe report` can re-render without
re-running the pipeline; the AI texts are kept as they are). Each file is written to a
temporary name and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from joe.reporting.context import ReportContext
from joe.reporting.facts import load_facts, plain_decimal, save_facts
from joe.reporting.html_page import render_html
from joe.reporting.markdown import render_markdown
from joe.reporting.runjson import build_run_json, reward_risk
from joe.reporting.summary import AISummary, TradeNote, rule_based_summary, trade_notes_markdown

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where each output of one run was written."""

    dir: Path
    markdown: Path
    html: Path
    json: Path
    signals_csv: Path
    positions_csv: Path
    scores_csv: Path
    ai_summary: Path
    facts: Path
    ai_trades: Path

    @classmethod
    def for_dir(cls, d: Path) -> ReportPaths:
        return cls(
            d,
            d / "report.md",
            d / "report.html",
            d / "run.json",
            d / "signals.csv",
            d / "positions.csv",
            d / "scores.csv",
            d / "ai_summary.md",
            d / "facts.json",
            d / "ai_trades.md",
        )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)


def _csv(headers: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(
        [
            ["" if c is None else plain_decimal(c) if isinstance(c, Decimal) else c for c in row]
            for row in rows
        ]
    )
    return buf.getvalue()


def signals_csv(ctx: ReportContext) -> str:
    rows: list[list[object]] = []
    for sf in ctx.signals:
        s = sf.signal
        qty = sf.quantity if sf.quantity is not None else s.quantity
        rows.append(
            [
                s.signal_id,
                s.symbol,
                s.strategy,
                s.direction.value,
                s.entry,
                s.stop_loss,
                s.take_profit,
                reward_risk(sf),
                s.confidence,
                s.score,
                sf.risk_grade,
                sf.vetoed,
                sf.veto_reason,
                qty,
                s.reason,
            ]
        )
    return _csv(
        [
            "signal_id",
            "symbol",
            "strategy",
            "direction",
            "entry",
            "stop_loss",
            "take_profit",
            "reward_risk",
            "confidence",
            "score",
            "risk_grade",
            "vetoed",
            "veto_reason",
            "quantity",
            "reason",
        ],
        rows,
    )


def positions_csv(ctx: ReportContext) -> str:
    rows: list[list[object]] = [
        [
            p.symbol,
            p.direction.value,
            p.quantity,
            p.avg_price,
            p.market_price,
            p.unrealized_pnl,
            p.stop_loss,
            p.take_profit,
            p.opened_at.isoformat() if p.opened_at else None,
            p.marked_at.isoformat() if p.marked_at else None,
        ]
        for p in ctx.positions
    ]
    return _csv(
        [
            "symbol",
            "direction",
            "quantity",
            "avg_price",
            "market_price",
            "unrealized_pnl",
            "stop_loss",
            "take_profit",
            "opened_at",
            "marked_at",
        ],
        rows,
    )


def scores_csv(ctx: ReportContext) -> str:
    comps = sorted({k for s in ctx.top_scores for k in s.components})
    rows: list[list[object]] = [
        [i, s.symbol, s.name, s.total, *[s.components.get(c) for c in comps], ";".join(s.scans)]
        for i, s in enumerate(ctx.top_scores, start=1)
    ]
    return _csv(["rank", "symbol", "name", "total", *comps, "scans"], rows)


class ReportGenerator:
    """Writes and re-renders run reports under `out_root` (normally data/reports)."""

    def __init__(self, out_root: Path) -> None:
        self.out_root = Path(out_root)

    def run_dir(self, run_id: str) -> Path:
        if not _SAFE_RUN_ID.match(run_id):
            # The run id becomes a directory name; never let it escape out_root.
            raise ValueError(f"unsafe run id for a report directory: {run_id!r}")
        return self.out_root / run_id

    def write(
        self,
        ctx: ReportContext,
        ai: AISummary | None = None,
        generated_at: datetime | None = None,
        trade_notes: Sequence[TradeNote] | None = None,
    ) -> ReportPaths:
        """Write every output for `ctx`. Without `ai`, the summary is the rule-based one.

        `trade_notes` (the analyst's per-trade notes) go to ai_trades.md; None leaves that file alone.
        """
        paths = ReportPaths.for_dir(self.run_dir(ctx.run_id))
        paths.dir.mkdir(parents=True, exist_ok=True)
        summary = ai if ai is not None else rule_based_summary(ctx, "AI analysis not run")
        generated_at = generated_at or datetime.now(UTC)
        save_facts(ctx, paths.facts)
        _atomic_write(paths.ai_summary, summary.to_markdown(f"Run summary {ctx.as_of.isoformat()}"))
        if trade_notes is not None:
            notes_md = trade_notes_markdown(trade_notes, f"Trades opened {ctx.as_of.isoformat()}")
            _atomic_write(paths.ai_trades, notes_md)
        _atomic_write(paths.signals_csv, signals_csv(ctx))
        _atomic_write(paths.positions_csv, positions_csv(ctx))
        _atomic_write(paths.scores_csv, scores_csv(ctx))
        _atomic_write(paths.json, json.dumps(build_run_json(ctx, summary, generated_at), indent=2) + "\n")
        _atomic_write(paths.markdown, render_markdown(ctx, summary))
        _atomic_write(paths.html, render_html(ctx, summary, generated_at))
        return paths

    def rerender(self, report_dir: Path) -> ReportPaths:
        """Re-render every output of an existing report from its facts.json (keeps its AI summary)."""
        paths = ReportPaths.for_dir(report_dir)
        ctx = load_facts(paths.facts)
        ai = read_summary(paths)
        return ReportGenerator(report_dir.parent).write(ctx, ai)


def read_summary(paths: ReportPaths) -> AISummary | None:
    """The AI summary recorded in run.json + ai_summary.md, or None if there is none."""
    try:
        meta = json.loads(paths.json.read_text(encoding="utf-8")).get("ai_summary")
        md = paths.ai_summary.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    if not meta:
        return None
    # ai_summary.md is "# title\n\n> label\n\n<text>": the text is after the label line.
    parts = md.split("\n\n", 2)
    text = parts[2] if len(parts) == 3 else md
    return AISummary(
        text=text.strip(),
        source=meta.get("source", "rule-based"),
        model=meta.get("model"),
        error=meta.get("error"),
    )


def find_report(root: Path, run_id_or_latest: str = "latest") -> Path:
    """The report directory of a run id, or of the newest run for "latest".

    "Newest" is by the run's `finished_at` in run.json, falling back to the directory's mtime.
    Raises FileNotFoundError when there is no such report.
    """
    root = Path(root)
    if run_id_or_latest != "latest":
        d = ReportGenerator(root).run_dir(run_id_or_latest)
        if not (d / "report.html").exists() and not (d / "facts.json").exists():
            raise FileNotFoundError(f"no report for run {run_id_or_latest!r} under {root}")
        return d
    candidates = (
        [d for d in root.iterdir() if d.is_dir() and (d / "run.json").exists()] if root.is_dir() else []
    )
    if not candidates:
        raise FileNotFoundError(f"no reports under {root}")

    def key(d: Path) -> tuple[datetime, float]:
        finished = datetime.min.replace(tzinfo=UTC)
        try:
            run = json.loads((d / "run.json").read_text(encoding="utf-8")).get("run", {})
            finished = datetime.fromisoformat(run["finished_at"])
            if finished.tzinfo is None:
                finished = finished.replace(tzinfo=UTC)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return finished, d.stat().st_mtime

    return max(candidates, key=key)
