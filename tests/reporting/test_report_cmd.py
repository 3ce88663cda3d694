"""`joe report`: locate latest / by id, re-render from facts.json, --open, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli import report_cmd
from joe.reporting.context import ReportContext
from joe.reporting.generator import ReportGenerator

runner = CliRunner()


def test_latest_prints_path_and_opens(
    tmp_path: Path, ctx: ReportContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ReportGenerator(tmp_path).write(ctx)
    opened: list[str] = []
    monkeypatch.setattr(report_cmd.webbrowser, "open", lambda url: opened.append(url))
    result = runner.invoke(report_cmd.report_app, ["latest", "--open", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(paths.html)
    assert opened == [paths.html.resolve().as_uri()]


def test_missing_html_is_rerendered_from_facts(tmp_path: Path, ctx: ReportContext) -> None:
    paths = ReportGenerator(tmp_path).write(ctx)
    paths.html.unlink()
    result = runner.invoke(report_cmd.report_app, [ctx.run_id, "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert paths.html.exists() and 'id="regime-chart"' in paths.html.read_text()


def test_unknown_run_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(report_cmd.report_app, ["nope", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "no report for run 'nope'" in result.output
