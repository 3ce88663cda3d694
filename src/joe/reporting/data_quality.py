"""How the data-quality findings and the regime inputs' freshness appear in run.json, facts.json,
report.md and report.html (one module, so each renderer adds one call)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from joe.reporting.context import DataFindingFacts, DataQualityFacts, RegimeInputFacts, ReportContext

MAX_LISTED = 200  # findings rendered in md/html (run.json keeps them all)


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


# -- JSON (run.json and facts.json share the shapes) --------------------------------------------------


def finding_to_json(f: DataFindingFacts) -> dict[str, Any]:
    return {
        "symbol": f.symbol,
        "severity": f.severity,
        "check": f.check,
        "message": f.message,
        "file": f.file,
        "row": f.row,
        "date": f.date,
    }


def quality_to_json(q: DataQualityFacts) -> dict[str, Any]:
    return {
        "checked": q.checked,
        "excluded": q.excluded,
        "flagged": q.flagged,
        "findings": [finding_to_json(f) for f in q.findings],
    }


def quality_from_json(d: dict[str, Any] | None) -> DataQualityFacts:
    if not d:
        return DataQualityFacts()
    return DataQualityFacts(
        int(d.get("checked", 0)),
        [
            DataFindingFacts(
                f["symbol"],
                f["severity"],
                f["check"],
                f["message"],
                f.get("file"),
                f.get("row"),
                f.get("date"),
            )
            for f in d.get("findings", [])
        ],
    )


def _age(i: RegimeInputFacts) -> str:
    """'2 sessions (4 days)' (sessions missed decide staleness); days alone when sessions are unknown."""
    if i.age_days is None:
        return ""
    if i.age_sessions is None:
        return f"{i.age_days} days"
    return f"{i.age_sessions} session{'s' if i.age_sessions != 1 else ''} ({i.age_days} days)"


def input_to_json(i: RegimeInputFacts) -> dict[str, Any]:
    return {
        "name": i.name,
        "symbol": i.symbol,
        "last_date": None if i.last_date is None else i.last_date.isoformat(),
        "age_days": i.age_days,
        "stale": i.stale,
        "proxy": i.proxy,
    } | ({} if i.age_sessions is None else {"age_sessions": i.age_sessions})


def inputs_from_json(items: list[dict[str, Any]] | None) -> list[RegimeInputFacts]:
    return [
        RegimeInputFacts(
            i["name"],
            i.get("symbol"),
            date.fromisoformat(i["last_date"]) if i.get("last_date") else None,
            i.get("age_days"),
            bool(i.get("stale")),
            bool(i.get("proxy", False)),
            i.get("age_sessions"),
        )
        for i in items or []
    ]


# -- Markdown ------------------------------------------------------------------------------------------


def _where(f: DataFindingFacts) -> str:
    parts = [p for p in (f.file, f"row {f.row}" if f.row is not None else None, f.date) if p]
    return " ".join(parts)


def markdown_lines(ctx: ReportContext) -> list[str]:
    """The "Regime inputs" and "Data quality" sections of report.md."""
    lines: list[str] = []
    if ctx.regime_inputs:
        lines += [
            "## Regime inputs",
            "",
            "| Input | Series | Last bar | Age | Fresh |",
            "|---|---|---|---|---|",
        ]
        for i in ctx.regime_inputs:
            series = (i.symbol or "missing") + (" (proxy)" if i.proxy else "")
            lines.append(
                f"| {i.name} | {series} | {i.last_date or ''} | {_age(i)} | {'STALE' if i.stale else 'yes'} |"
            )
        lines.append("")
    q = ctx.data_quality
    if q.checked or q.findings:
        lines += [
            "## Data quality",
            "",
            f"{q.checked} series checked: {len(q.excluded)} excluded (errors), "
            f"{len(q.flagged)} flagged (warnings).",
            "",
        ]
        if q.findings:
            lines += ["| Symbol | Severity | Check | Where | Finding |", "|---|---|---|---|---|"]
            for f in _ordered(q.findings)[:MAX_LISTED]:
                msg = f.message.replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {f.symbol} | {f.severity} | {f.check} | {_where(f)} | {msg} |")
            if len(q.findings) > MAX_LISTED:
                lines.append(f"\n({len(q.findings) - MAX_LISTED} more in run.json)")
            lines.append("")
    return lines


def _ordered(findings: list[DataFindingFacts]) -> list[DataFindingFacts]:
    return sorted(findings, key=lambda f: (f.severity != "error", f.symbol, f.check))


# -- HTML ----------------------------------------------------------------------------------------------


def html_regime_inputs(ctx: ReportContext) -> str:
    """A small table of the regime's inputs and their freshness (inside the regime section)."""
    if not ctx.regime_inputs:
        return ""
    rows = "".join(
        f'<tr class="{"stale" if i.stale else ""}"><td>{_e(i.name)}</td>'
        f"<td>{_e(i.symbol or 'missing')}{' (proxy)' if i.proxy else ''}</td><td>{_e(i.last_date or '')}</td>"
        f'<td class="num">{_e(_age(i))}</td>'
        f"<td>{'<b>STALE</b>' if i.stale else 'fresh'}</td></tr>"
        for i in ctx.regime_inputs
    )
    return (
        '<table id="regime-inputs"><thead><tr><th>Input</th><th>Series</th><th>Last bar</th>'
        f'<th class="num">Age</th><th>Freshness</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def html_section(ctx: ReportContext) -> str:
    """The "Data quality" section: counts, then every finding with file and row."""
    q = ctx.data_quality
    if not (q.checked or q.findings):
        return ""
    head = (
        f"<p>{q.checked} series checked: <b>{len(q.excluded)} excluded</b> (errors), "
        f"{len(q.flagged)} flagged (warnings).</p>"
    )
    if not q.findings:
        return f'<section id="data-quality"><h2>Data quality</h2>{head}</section>'
    rows = "".join(
        f'<tr class="{_e(f.severity)}"><td>{_e(f.symbol)}</td><td>{_e(f.severity)}</td><td>{_e(f.check)}</td>'
        f'<td>{_e(f.file or "")}</td><td class="num">{_e("" if f.row is None else f.row)}</td>'
        f"<td>{_e(f.date or '')}</td><td>{_e(f.message)}</td></tr>"
        for f in _ordered(q.findings)[:MAX_LISTED]
    )
    more = (
        f'<p class="empty">{len(q.findings) - MAX_LISTED} more in run.json.</p>'
        if len(q.findings) > MAX_LISTED
        else ""
    )
    return (
        f'<section id="data-quality"><h2>Data quality</h2>{head}<table id="data-findings"><thead><tr>'
        '<th>Symbol</th><th>Severity</th><th>Check</th><th>File</th><th class="num">Row</th><th>Date</th>'
        f"<th>Finding</th></tr></thead><tbody>{rows}</tbody></table>{more}</section>"
    )
