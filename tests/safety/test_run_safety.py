"""The safety layer inside a paper run: the kill switch is honoured by the next run's orders, a pending
flatten closes the paper book, denials appear in the report's signal table, a broken audit chain warns
loudly in paper and blocks live/shadow, and a second Joe on the same data folder is refused (exit 3)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli.main import app
from joe.config.mode import TradingMode
from joe.runtime.bootstrap import bootstrap
from joe.runtime.run_once import RunOptions, RunOutcome, run_once_sync
from joe.safety.control import SafetyContext
from joe.safety.lock import AlreadyRunning, InstanceLock, holder_pid
from joe.safety.preflight import SafetyRefused, preflight

pytestmark = pytest.mark.timeout(600)  # several whole paper runs each; slow on a loaded machine

CONFIG = "version: 1\npipeline:\n  universe_size: 80\nai:\n  enabled: false\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_")) or name in (
            "TRADING_MODE",
            "JOE_BROKER",
            "JOE_DB_URL",
        ):
            monkeypatch.delenv(name, raising=False)
    (tmp_path / "execution.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    yield tmp_path


def _run(**kw: object) -> RunOutcome:
    rt = bootstrap()
    try:
        return run_once_sync(rt, RunOptions(**kw))  # type: ignore[arg-type]
    finally:
        rt.close()


def _signal_rows(out: RunOutcome) -> list[dict[str, str]]:
    """The report's signal table as run.json has it (the markdown and HTML tables show the same text)."""
    rows: list[dict[str, str]] = json.loads((out.report.dir / "run.json").read_text())["signals"]
    return rows


def _open_positions(project: Path) -> int:
    rt = bootstrap()
    try:
        return len(rt.store.open_positions("paper"))
    finally:
        rt.close()


def test_kill_is_honoured_by_the_next_run_and_flatten_closes_the_paper_book(project: Path) -> None:
    first = _run()
    assert first.opened > 0
    runner = CliRunner()
    r = runner.invoke(app, ["kill", "--flatten", "--reason", "end of test"])
    assert r.exit_code == 0, r.output
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["trading_state"]["state"] == "halted" and status["paper_flatten_pending"]
    assert len(status["positions"]) == first.opened and all(p["stop"] for p in status["positions"])

    second = _run()
    assert second.opened == 0 and second.closed >= first.opened
    assert _open_positions(project) == 0
    assert any("kill --flatten: closed" in w for w in second.warnings)
    assert any("trading is HALTED" in w for w in second.warnings)
    rows = _signal_rows(second)
    executions = [row.get("execution", "") for row in rows]
    assert (
        any(e.startswith("denied: trading_state: trading is halted") for e in executions)
        or second.signals == 0
    )
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["positions"] == [] and status["paper_flatten_pending"] is None


def test_gate_denials_appear_in_the_signal_table_with_their_audit_records(project: Path) -> None:
    (project / "execution.yaml").write_text(CONFIG + "risk:\n  max_symbol_exposure_pct: 1\n")
    out = _run()
    assert out.opened == 0
    rows = _signal_rows(out)
    denied = [row for row in rows if row.get("execution", "").startswith("denied: symbol_exposure: ")]
    assert denied and len(denied) == sum(1 for row in rows if not row["vetoed"]), rows
    assert all(row["execution"].endswith("vs limit 1.00%)") for row in denied)
    md = (out.report.dir / "report.md").read_text()
    assert "denied: symbol_exposure" in md
    audit_lines = (project / "data" / "audit").glob("audit-*.jsonl")
    records = [json.loads(line) for f in audit_lines for line in f.read_text().splitlines()]
    rules = {r["payload"]["rule"] for r in records if r["event"] == "risk.denied"}
    assert rules == {"symbol_exposure"}


def test_broken_chain_warns_loudly_in_paper_and_blocks_live(project: Path) -> None:
    _run()
    audit_dir = project / "data" / "audit"
    (f,) = sorted(audit_dir.glob("audit-*.jsonl"))
    lines = f.read_bytes().splitlines()
    f.write_bytes(b"".join(x + b"\n" for x in lines[:-3]))  # the tail of the last run vanishes
    out = _run()
    assert any(w.startswith("AUDIT CHAIN BROKEN") for w in out.warnings)
    status = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert status["audit"]["ok"] is False and "BROKEN" in status["audit"]["summary"]
    rt = bootstrap()
    try:
        for mode in (TradingMode.LIVE, TradingMode.SHADOW):
            rt.decision = dataclasses.replace(rt.decision, mode=mode)
            with pytest.raises(SafetyRefused, match="audit chain is broken"):
                preflight(rt, SafetyContext.from_runtime(rt))
    finally:
        rt.close()


def test_a_second_joe_on_the_same_data_folder_exits_3(project: Path) -> None:
    data = project / "data"
    held = InstanceLock.for_data_dir(data).acquire()
    try:
        assert holder_pid(data) == os.getpid()
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            InstanceLock.for_data_dir(data).acquire()
        exe = Path(sys.executable).with_name("joe")
        proc = subprocess.run(
            [str(exe), "run", "--once"],
            cwd=project,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 3, proc.stderr[-2000:]
        assert f"another Joe is running (pid {os.getpid()})" in proc.stderr
    finally:
        held.release()
    assert holder_pid(data) is None
    with InstanceLock.for_data_dir(data):  # free again once the holder is gone
        pass


@pytest.mark.parametrize("kill_form", ["halt file", "dangling symlink"])
def test_paper_run_refusing_entries_exits_3_with_the_message(project: Path, kill_form: str) -> None:
    """README: `joe run --once` exits 3 when the kill file or the state forbids trading — paper too —
    after its exits and report (review of issue 11, points 5 and 8)."""
    kill = project / "data" / "KILL"
    kill.parent.mkdir(parents=True, exist_ok=True)
    if kill_form == "halt file":
        kill.write_text("halt operator on the phone\n")
    else:
        kill.symlink_to(project / "nowhere")
    r = CliRunner().invoke(app, ["run", "--once"])
    assert r.exit_code == 3, r.output
    assert "Refused" in r.output and "new entries refused: trading is HALTED (by kill-file" in r.output
    assert "0 opened" in r.output and "Report:" in r.output  # the run itself was done
    assert _open_positions(project) == 0


def test_daily_loss_denies_every_entry_of_a_paper_run(project: Path) -> None:
    """The daily loss limit at run time (review of issue 11, point 10): the book opened the day far above
    today's equity, so each entry of the next run is denied by `daily_loss_limit`, in the signal table."""
    from datetime import UTC, date, datetime, timedelta
    from decimal import Decimal

    assert _run(as_of=date(2018, 11, 30)).opened > 0
    later = date(2018, 12, 14)  # a Friday session, two weeks on
    rt = bootstrap()
    try:  # the last mark of the day before, just before midnight: far above what the book is worth
        eve = datetime.combine(later - timedelta(days=1), datetime.max.time(), tzinfo=UTC)
        rt.store.record_equity(eve, "paper", Decimal(1_000_000), Decimal(1_000_000))
    finally:
        rt.close()
    second = _run(as_of=later)
    assert second.opened == 0
    rows = [row for row in _signal_rows(second) if not row["vetoed"]]
    denied = [
        row["execution"] for row in rows if row.get("execution", "").startswith("denied: daily_loss_limit: ")
    ]
    assert rows and len(denied) == len(rows), rows


def test_a_run_with_no_signal_still_notes_the_kill_file_and_builds_no_book(project: Path) -> None:
    """`RunGuard.screen_run` skips the daily book when no signal reaches the gate (a backtest's usual
    day), but not the trading-state check: a kill file still makes the run's entries refused (exit 3)."""
    import asyncio
    from types import SimpleNamespace

    from joe.safety.run_guard import RunGuard

    rt = bootstrap()
    try:
        guard = RunGuard.start(rt)
        (project / "data" / "KILL").write_text("halt\n")

        def no_book(*a: object, **k: object) -> None:
            raise AssertionError("the daily book was built for no signal")

        guard.daily_book = no_book  # type: ignore[assignment,method-assign]
        st = SimpleNamespace(pf=object(), snap=object(), as_of_idx=0)
        allowed, denied = asyncio.run(guard.screen_run(st, []))  # type: ignore[arg-type]
        assert (allowed, denied) == ([], {})
        assert guard.entries_refused is not None and "kill-file" in str(guard.entries_refused)
    finally:
        rt.close()
