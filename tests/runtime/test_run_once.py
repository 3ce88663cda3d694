"""`joe run --once` end to end on the embedded sample data, in paper mode."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.audit.log import verify
from joe.cli.main import app
from joe.runtime.bootstrap import bootstrap
from joe.runtime.run_once import RunOptions, run_once_sync


def run(project: Path) -> object:
    rt = bootstrap()
    try:
        return run_once_sync(rt, RunOptions())
    finally:
        rt.close()


def test_run_writes_report_and_trades_on_paper(project: Path) -> None:
    out = run(project)
    report = Path(out.report.dir)  # type: ignore[attr-defined]
    for name in ("report.md", "signals.csv", "positions.csv", "run.json", "report.html"):
        assert (report / name).is_file(), name
    doc = json.loads((report / "run.json").read_text())
    assert doc["run"]["mode"] == "paper"
    md = (report / "report.md").read_text()
    assert "regime" in md.lower()
    assert out.mode == "paper"  # type: ignore[attr-defined]
    assert out.signals > 0  # type: ignore[attr-defined]
    assert out.opened > 0, "the sample run should open paper positions"  # type: ignore[attr-defined]
    assert verify(project / "data" / "audit").ok
    events = [
        json.loads(line)["event"]
        for f in sorted((project / "data/audit").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    for needed in (
        "config.loaded",
        "mode.resolved",
        "run.started",
        "order.attempt",
        "order.fill",
        "run.finished",
    ):
        assert needed in events, needed


def test_second_run_on_same_data_opens_no_duplicate(project: Path) -> None:
    first = run(project)
    rt = bootstrap()
    try:
        positions_after_first = rt.store.open_positions("paper")
        orders_after_first = rt.store.orders(mode="paper")
    finally:
        rt.close()
    second = run(project)
    rt = bootstrap()
    try:
        assert len(rt.store.open_positions("paper")) == len(positions_after_first)
        assert len(rt.store.orders(mode="paper")) == len(orders_after_first)
    finally:
        rt.close()
    assert first.opened > 0  # type: ignore[attr-defined]
    assert second.opened == 0  # type: ignore[attr-defined]
    signals = {p.signal_id for p in positions_after_first}
    assert len(signals) == len(positions_after_first)


def test_paper_run_works_with_networking_disabled(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFAKE-network-is-off-123456")
    (project / "config" / "execution.yaml").write_text("pipeline:\n  universe_size: 60\n")  # AI enabled
    out = run(project)
    assert out.mode == "paper" and out.signals > 0  # type: ignore[attr-defined]
    summary = (Path(out.report.dir) / "ai_summary.md").read_text()  # type: ignore[attr-defined]
    assert "rule-based" in summary.lower()


def test_live_mode_with_an_unreachable_broker_fails_closed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live is no longer refused by the batch job (issue 10); a broker it cannot reach means no order,
    a failed run, and an audit record saying so — never a silent paper run."""
    (project / "config" / "execution.yaml").write_text(
        "live:\n  enabled: true\npipeline:\n  universe_size: 40\n"
    )
    monkeypatch.setenv("TRADING_MODE", "live")
    monkeypatch.setenv("JOE_BROKER", "capital")
    monkeypatch.setenv("CAPITAL_API_KEY", "k" * 16)
    monkeypatch.setenv("CAPITAL_IDENTIFIER", "trader@example.com")
    monkeypatch.setenv("CAPITAL_PASSWORD", "p" * 16)
    monkeypatch.setenv("CAPITAL_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    rt = bootstrap(broker="capital")
    try:
        assert rt.mode == "live", rt.decision.reasons
        with pytest.raises(Exception) as info:
            run_once_sync(rt, RunOptions(broker="capital"))
        assert not isinstance(info.value, AssertionError)
        assert rt.store.orders() == []
    finally:
        rt.close()
    events = [
        json.loads(line)["event"]
        for f in (project / "data/audit").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert "run.failed" in events or "run.refused" in events


def test_cli_prints_report_path(project: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("Report: ")][-1]
    assert Path(line.removeprefix("Report: ")).is_file()


def test_cli_rejects_bad_arguments(project: Path) -> None:
    r = CliRunner().invoke(app, ["run", "--once", "--as-of", "31/12/2018"])
    assert r.exit_code == 2 and "--as-of" in r.output
    r = CliRunner().invoke(app, ["run", "--once", "--broker", "nasdaq"])
    assert r.exit_code == 2 and "--broker" in r.output


def test_as_of_moves_the_analysis_date(project: Path) -> None:
    rt = bootstrap()
    try:
        from datetime import date

        out = run_once_sync(rt, RunOptions(as_of=date(2018, 2, 9)))
    finally:
        rt.close()
    assert str(out.as_of) <= "2018-02-09"


def test_unwritable_data_dir_is_a_clear_error_not_a_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = project / "not-a-dir"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("JOE_DATA_DIR", str(blocker / "data"))
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 1
    assert "Cannot start" in result.output and "JOE_DATA_DIR" in result.output
    assert "Traceback" not in result.output


def test_run_writes_a_labelled_note_per_opened_trade(project: Path) -> None:
    out = run(project)
    notes = (Path(out.report.dir) / "ai_trades.md").read_text()  # type: ignore[attr-defined]
    sections = notes.split("\n## ")[1:]
    assert len(sections) == min(out.opened, 10) > 0  # type: ignore[attr-defined]
    for section in sections:
        assert ": opened " in section.splitlines()[0]
        assert "> Rule-based summary (AI unavailable: " in section  # the test project has no AI
        assert "reward/risk" in section
