"""`joe report [RUN_ID|latest] [--open] [--rerender]`: locate (and re-render) a run's HTML report.

Mount with `app.command("report")(report)` on the main typer app, or `app.add_typer(report_app)`.
"""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

import typer


def default_reports_root() -> Path:
    """`$JOE_DATA_DIR/reports` (default data/reports), where `joe run` writes reports."""
    return Path(os.environ.get("JOE_DATA_DIR") or "data") / "reports"


def locate_or_render(root: Path, run: str = "latest", rerender: bool = False) -> Path:
    """The report.html of `run`, re-rendered from facts.json when asked or when the HTML is missing."""
    from joe.reporting.generator import ReportGenerator, ReportPaths, find_report  # heavy: charts

    report_dir = find_report(root, run)
    paths = ReportPaths.for_dir(report_dir)
    if rerender or not paths.html.exists():
        if not paths.facts.exists():
            raise FileNotFoundError(f"{report_dir} has no facts.json to render from")
        paths = ReportGenerator(report_dir.parent).rerender(report_dir)
    return paths.html


def report(
    run: str = typer.Argument("latest", help="Run id, or 'latest'."),
    open_: bool = typer.Option(False, "--open", help="Open the HTML report in the default browser."),
    rerender: bool = typer.Option(False, "--rerender", help="Re-render all outputs from the saved facts."),
    root: Path | None = typer.Option(None, "--root", help="Reports folder (default $JOE_DATA_DIR/reports)."),
) -> None:
    """Print the path of a run's HTML report (re-rendering it from its saved facts when needed)."""
    try:
        html = locate_or_render(root or default_reports_root(), run, rerender)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"joe report: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(str(html))
    if open_:
        webbrowser.open(html.resolve().as_uri())


report_app = typer.Typer(help="Run reports.", add_completion=False)
report_app.command("report")(report)
