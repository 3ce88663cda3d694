"""`joe report [RUN_ID|latest] [--open] [--rerender]`: locate (and re-render) a run's HTML report.
`joe report --divergence [--shadow] [--json] [--data-dir DIR]`: intended vs actual over a data
folder's live (or shadow) orders (`joe.reporting.divergence`).

Mount with `app.command("report")(report)` on the main typer app, or `app.add_typer(report_app)`.
"""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

import typer

from joe.cli.exit_codes import ExitCode


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
        try:
            paths = ReportGenerator(report_dir.parent).rerender(report_dir)
        except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(
                f"{paths.facts} cannot be re-rendered ({what}); it is damaged or from another Joe version"
            ) from exc
    return paths.html


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, FileNotFoundError | ValueError) else f"{type(exc).__name__}: {text}"


def report(
    run: str = typer.Argument("latest", help="Run id, or 'latest'."),
    open_: bool = typer.Option(False, "--open", help="Open the HTML report in the default browser."),
    rerender: bool = typer.Option(False, "--rerender", help="Re-render all outputs from the saved facts."),
    root: Path | None = typer.Option(None, "--root", help="Reports folder (default $JOE_DATA_DIR/reports)."),
    divergence: bool = typer.Option(
        False, "--divergence", help="Print intended vs actual (live vs its paper twin) instead."
    ),
    shadow: bool = typer.Option(
        False, "--shadow", help="With --divergence: shadow intents vs the shadow book."
    ),
    as_json: bool = typer.Option(False, "--json", help="With --divergence: print JSON, not markdown."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="With --divergence: default $JOE_DATA_DIR."
    ),
) -> None:
    """Print the path of a run's HTML report (re-rendering it from its saved facts when needed)."""
    if divergence:
        _divergence(data_dir or Path(os.environ.get("JOE_DATA_DIR") or "data"), shadow, as_json)
        return
    reports = root or default_reports_root()
    if root is not None and not root.is_dir():
        typer.echo(
            f"joe report: --root {root} is not a folder: give a reports folder (e.g. data/reports)", err=True
        )
        raise typer.Exit(code=ExitCode.USAGE)
    try:
        html = locate_or_render(reports, run, rerender)
    except (FileNotFoundError, ValueError, KeyError, TypeError, OSError) as exc:
        typer.echo(f"joe report: {_one_line(exc)}", err=True)
        raise typer.Exit(code=ExitCode.FAILED) from None
    typer.echo(str(html))
    if open_:
        webbrowser.open(html.resolve().as_uri())


def _divergence(data_dir: Path, shadow: bool, as_json: bool) -> None:
    import json

    from joe.reporting.divergence import load, to_markdown
    from joe.store.errors import StoreError

    try:
        d = load(data_dir, "shadow" if shadow else "live")
    except (FileNotFoundError, ValueError, StoreError) as exc:
        typer.echo(f"joe report --divergence: {_one_line(exc)}", err=True)
        raise typer.Exit(code=ExitCode.FAILED) from None
    typer.echo(json.dumps(d.to_dict(), indent=2) if as_json else to_markdown(d), nl=as_json)


report_app = typer.Typer(help="Run reports.", add_completion=False)
report_app.command("report")(report)
